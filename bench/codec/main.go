// Command codec measures Mosaic's DICOM codec on a folder of files: a
// header-only parse of every file (pixel data skipped, as an indexer does)
// and a streaming rewrite of every file to another folder. bench/codec.sh
// runs it beside dcmtk and pydicom on the same files.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

func main() {
	in := flag.String("in", "", "folder of DICOM files")
	out := flag.String("out", "", "folder for rewritten files (rewrite is skipped when empty)")
	flag.Parse()
	if *in == "" {
		log.Fatal("codec: -in is required")
	}
	var files []string
	var total int64
	err := filepath.WalkDir(*in, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".dcm" {
			files = append(files, p)
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := dicom.NewDecoder(f, dicom.ReadOptions{StopAtPixelData: true}).ReadFile(); err != nil {
			log.Fatalf("%s: %v", p, err)
		}
		f.Close()
	}
	el := time.Since(start).Seconds()
	fmt.Printf("parse\t%d files\t%.3f s\t%.0f files/s\n", len(files), el, float64(len(files))/el)
	if *out == "" {
		return
	}
	start = time.Now()
	for i, p := range files {
		src, err := os.Open(p)
		if err != nil {
			log.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(*out, fmt.Sprintf("%06d.dcm", i)))
		if err != nil {
			log.Fatal(err)
		}
		if err := dicom.Rewrite(dst, src, dicom.RewriteOptions{}); err != nil {
			log.Fatalf("%s: %v", p, err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			log.Fatal(err)
		}
	}
	el = time.Since(start).Seconds()
	fmt.Printf("rewrite\t%d files\t%.3f s\t%.1f MB/s\n", len(files), el, float64(total)/el/1e6)
}
