package main

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

func newDumpCmd(e *env) *cobra.Command {
	var (
		asJSON        bool
		full          bool
		bulkThreshold int
		indent        bool
	)
	cmd := &cobra.Command{
		Use:   "dump [flags] FILE...",
		Short: "Print DICOM files as a readable dump or as DICOM JSON",
		Long: `Print each DICOM FILE as a readable dump, one line per element in the manner
of dcmtk's dcmdump: the tag, the VR, the value decoded to Unicode with the
file's Specific Character Set, then after '#' the value length, the value
multiplicity and the keyword. The file meta information comes first;
sequence items are indented. Long values are cut with "..." unless --full is
given. With several files, each dump is preceded by a "# FILE" line.

With --json, print the dataset (without the file meta information) in the
DICOM JSON Model of PS3.18 Annex F. One FILE gives one JSON object; several
give a JSON array of objects, one per file that could be read, in the order
named (as a DICOMweb metadata response does). Binary values longer than
--bulk-threshold bytes are replaced by a "BulkDataURI" of the form
"urn:mosaic:bulk:length=N" that says how long the value was; 0 replaces every
binary value and -1 inlines them all.

A file that cannot be read is reported on standard error with the decoder's
message (which names the byte offset and the tag) and the other files are
still printed; the exit status is then 1. Misuse of the command line exits
with status 2.`,
		Example: `  mosaic dump image.dcm
  mosaic dump --full image.dcm | less
  mosaic dump --json --bulk-threshold 0 a.dcm b.dcm > metadata.json`,
		Args: argsError(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bulkThreshold < -1 {
				return usagef("dump: --bulk-threshold must be -1, 0 or a positive number of bytes, not %d", bulkThreshold)
			}
			out := bufio.NewWriterSize(e.stdout, 64<<10)
			jopts := dicom.JSONOptions{BulkThreshold: bulkThreshold}
			switch bulkThreshold {
			case 0:
				jopts.NoInline = true
			case -1:
				jopts.BulkThreshold = -1
			}
			if indent {
				jopts.Indent = "  "
			}
			dopts := dicom.DumpOptions{Full: full}
			failed := 0
			written := 0
			many := len(args) > 1
			if asJSON && many {
				out.WriteString("[")
			}
			for _, path := range args {
				if err := e.ctx.Err(); err != nil {
					return err
				}
				f, err := dicom.ReadFile(path, dicom.ReadOptions{})
				if err != nil {
					failed++
					// Keep stdout and stderr in order for a reader of both.
					out.Flush()
					fmt.Fprintf(e.stderr, "mosaic: dump %s: %v\n", path, err)
					continue
				}
				switch {
				case asJSON:
					if written > 0 {
						out.WriteString(",")
					}
					if many {
						out.WriteString("\n")
					}
					err = dicom.WriteJSON(out, &f.Dataset, jopts)
					if !many {
						out.WriteString("\n")
					}
				default:
					if many {
						if written > 0 {
							out.WriteString("\n")
						}
						fmt.Fprintf(out, "# %s\n", path)
					}
					err = dicom.Dump(out, f, dopts)
				}
				if err != nil {
					return fmt.Errorf("dump %s: %w", path, err)
				}
				written++
			}
			if asJSON && many {
				out.WriteString("\n]\n")
			}
			if err := out.Flush(); err != nil {
				return fmt.Errorf("dump: write: %w", err)
			}
			if failed > 0 {
				return exitError{code: exitFailure, msg: fmt.Sprintf("dump: %d of %d files could not be read", failed, len(args))}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print the DICOM JSON Model (PS3.18 F.2) instead of a dump; an array when several files are named")
	fl.BoolVar(&full, "full", false, "show every value completely, without cutting long values (dump)")
	fl.IntVar(&bulkThreshold, "bulk-threshold", dicom.DefaultBulkThreshold, "largest binary value in bytes written inline as base64 (JSON); longer ones become a BulkDataURI; 0: none inline, -1: all inline")
	fl.BoolVar(&indent, "indent", false, "pretty-print the JSON with one member per line")
	return cmd
}
