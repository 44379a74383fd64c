package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// mosaic job and mosaic tool: the hub's jobs API and tool catalogue
// from the command line (docs/processing.md).

// jobHTTPClient is the client of job and tool (tests may replace it).
var jobHTTPClient = &http.Client{Timeout: 5 * time.Minute}

// jobAPI is a hub's URL and the token to call its jobs API with.
type jobAPI struct {
	url, token string
}

// jobAPIFlags are the --hub and --token of job and tool.
type jobAPIFlags struct{ hub, token string }

func (f *jobAPIFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.hub, "hub", "", "the hub's URL (env MOSAIC_HUB)")
	fs.StringVar(&f.token, "token", "", "an API token (env MOSAIC_TOKEN; default the one `mosaic login --hub URL` stored)")
}

// open finds the hub and the token: flags, then the environment, then
// the credentials file of mosaic login.
func (f *jobAPIFlags) open(e *env, cmdName string) (jobAPI, error) {
	h, tok := f.hub, f.token
	if h == "" {
		h = e.getenv("MOSAIC_HUB")
	}
	if h == "" {
		return jobAPI{}, usagef("%s: --hub URL is required", cmdName)
	}
	key, err := oidc.HubKey(h)
	if err != nil {
		return jobAPI{}, usageError{err}
	}
	if tok == "" {
		tok = e.getenv("MOSAIC_TOKEN")
	}
	if tok == "" {
		creds, err := oidc.CredentialsFile(e.getenv)
		if err == nil {
			tok, _ = creds.Token(key)
		}
	}
	if tok == "" {
		return jobAPI{}, usagef("%s: no token: log in with `mosaic login --hub %s`, or give --token", cmdName, key)
	}
	return jobAPI{url: key, token: tok}, nil
}

// call sends a JSON request and decodes a JSON answer into out; an
// error answer becomes an error with the hub's message.
func (a jobAPI) call(e *env, method, path string, body, out any) error {
	resp, err := a.do(e, method, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &m) == nil && m.Error != "" {
			return fmt.Errorf("the hub answered %d: %s", resp.StatusCode, m.Error)
		}
		return fmt.Errorf("the hub answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (a jobAPI) do(e *env, method, path string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, a.url+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := jobHTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the hub: %w", err)
	}
	return resp, nil
}

func printJobJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newJobCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Run jobs at the nodes under process permits: submit, list, get, logs, cancel, outputs",
		Long: `A job runs a reviewed program or container image at each node you hold a
process permit for, on the permit's snapshot only. The nodes check the
permit and the tool themselves; only what each node's airlock releases
comes back: log lines and checked outputs. See docs/processing.md.

The hub and token come from --hub and --token, or MOSAIC_HUB and
MOSAIC_TOKEN, or the token 'mosaic login --hub URL' stored.`,
		Example: `  mosaic job submit --hub https://hub.example --name fit --program train.py --permit pm-1 --permit pm-2 --datasets north/lung --datasets south/lung --arg=--epochs --arg 5
  mosaic job submit --hub https://hub.example --name seg --image registry.example/seg@sha256:... --permit pm-1 --datasets lung --env THRESHOLD=0.5
  mosaic job list --hub https://hub.example
  mosaic job logs --hub https://hub.example -f job-1234
  mosaic job outputs --hub https://hub.example job-1234 --dir results/`,
	}
	cmd.AddCommand(newJobSubmitCmd(e), newJobListCmd(e), newJobGetCmd(e), newJobLogsCmd(e), newJobCancelCmd(e), newJobOutputsCmd(e))
	return cmd
}

func newJobSubmitCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var file, name, image, program, builtin, flavor string
	var permits, args, envs, datasets []string
	var dryRun, dicom bool
	cmd := &cobra.Command{
		Use:   "submit --hub URL --name N (--image NAME@sha256:... | --program FILE | --builtin NAME) --permit ID... [--arg A]... [--env K=V]... [--flavor no-gpu] [--dry-run]",
		Short: "Submit a job (or --file spec.json in jobman's shape); prints the job",
		Long: `Submits a job to the hub, which checks your permits and the tool's reviews,
signs the job and sends it to the node of each permit. --program FILE
names a program by its SHA-256: the same file must be in the hub's tool
catalogue, approved (mosaic tool register --program FILE). --datasets
names the datasets of the permits, as DATASET or NODE/DATASET (each must
have a permit among --permit). --dry-run checks everything and sends
nothing.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.open(e, "job submit")
			if err != nil {
				return err
			}
			var spec jobs.Spec
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return usageError{err}
				}
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&spec); err != nil {
					return usagef("job submit: %s is not a job spec: %v", file, err)
				}
			}
			if name != "" {
				spec.JobName = name
			}
			chosen := 0
			for _, s := range []string{image, program, builtin} {
				if s != "" {
					chosen++
				}
			}
			if chosen > 1 {
				return usagef("job submit: give one of --image, --program and --builtin")
			}
			switch {
			case image != "":
				spec.Kind, spec.Image = jobs.KindContainer, image
			case program != "":
				b, err := os.ReadFile(program)
				if err != nil {
					return usageError{err}
				}
				spec.Kind, spec.Image = jobs.KindProcess, jobs.Digest(b)
			case builtin != "":
				spec.Kind, spec.Image = jobs.KindBuiltin, builtin
			}
			if spec.Image == "" {
				return usagef("job submit: --image, --program or --builtin (or --file) is required")
			}
			spec.Permits = append(spec.Permits, permits...)
			spec.CommandArgs = append(spec.CommandArgs, args...)
			spec.DatasetsList = append(spec.DatasetsList, datasets...)
			for _, kv := range envs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("job submit: --env %q: use NAME=VALUE", kv)
				}
				spec.Env = append(spec.Env, jobs.EnvVar{Name: k, Value: v})
			}
			if cmd.Flags().Changed("flavor") || spec.Resources.Flavor == "" {
				spec.Resources.Flavor = flavor
			}
			spec.DryRun = spec.DryRun || dryRun
			spec.DICOM = spec.DICOM || dicom
			if len(spec.DatasetsList) == 0 {
				return usagef("job submit: --datasets is required (the datasets of your permits)")
			}
			var j jobs.Job
			if err := api.call(e, "POST", "/api/v1/jobs", spec, &j); err != nil {
				return fmt.Errorf("job submit: %w", err)
			}
			return printJobJSON(e.stdout, j)
		},
	}
	f.register(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "a job spec in JSON (jobman's shape: jobName, image, commandArgs, datasetsList, env, resources, permits); flags add to it")
	fl.StringVar(&name, "name", "", "the job's name")
	fl.StringVar(&image, "image", "", "a container image by digest: NAME@sha256:<64 hex digits>")
	fl.StringVar(&program, "program", "", "a program file; the job names it by its SHA-256 (it must be in the tool catalogue)")
	fl.StringVar(&builtin, "builtin", "", "a built-in analysis of the nodes")
	fl.StringArrayVar(&permits, "permit", nil, "a process permit's id; repeat for each node")
	fl.StringArrayVar(&datasets, "datasets", nil, "a dataset the job runs on (DATASET or NODE/DATASET); repeat")
	fl.StringArrayVar(&args, "arg", nil, "a command argument; repeat, in order")
	fl.StringArrayVar(&envs, "env", nil, "an environment variable NAME=VALUE; repeat")
	fl.StringVar(&flavor, "flavor", "no-gpu", "resources: no-gpu, small-gpu, medium-gpu or large-gpu")
	fl.BoolVar(&dicom, "dicom", false, "show the snapshot's DICOM files to the job (under /data/dicom)")
	fl.BoolVar(&dryRun, "dry-run", false, "check the job at the hub and send nothing")
	return cmd
}

func newJobListCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --hub URL [--json]",
		Short: "List your jobs (an admin's: every job)",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.open(e, "job list")
			if err != nil {
				return err
			}
			var l struct {
				Jobs []jobs.Job `json:"jobs"`
			}
			if err := api.call(e, "GET", "/api/v1/jobs", nil, &l); err != nil {
				return fmt.Errorf("job list: %w", err)
			}
			if asJSON {
				return printJobJSON(e.stdout, l.Jobs)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATE\tNODES\tSUBMITTED")
			for _, j := range l.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", j.ID, j.Name, j.State, len(j.Nodes), j.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newJobGetCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	cmd := &cobra.Command{
		Use:   "get --hub URL JOB",
		Short: "Print a job with its state, progress, exit code and outputs at each node (JSON)",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.open(e, "job get")
			if err != nil {
				return err
			}
			var j jobs.Job
			if err := api.call(e, "GET", "/api/v1/jobs/"+url.PathEscape(args[0]), nil, &j); err != nil {
				return fmt.Errorf("job get: %w", err)
			}
			return printJobJSON(e.stdout, j)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newJobCancelCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	cmd := &cobra.Command{
		Use:   "cancel --hub URL JOB",
		Short: "Cancel a job at every node that still runs it",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.open(e, "job cancel")
			if err != nil {
				return err
			}
			var j jobs.Job
			if err := api.call(e, "DELETE", "/api/v1/jobs/"+url.PathEscape(args[0]), nil, &j); err != nil {
				return fmt.Errorf("job cancel: %w", err)
			}
			fmt.Fprintf(e.stdout, "job %s: %s\n", j.ID, j.State)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newJobLogsCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var follow bool
	var node string
	cmd := &cobra.Command{
		Use:   "logs --hub URL [-f] [--node N] JOB",
		Short: "Print the log lines the nodes released (-f: follow until the job ends)",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.open(e, "job logs")
			if err != nil {
				return err
			}
			q := url.Values{}
			if node != "" {
				q.Set("node", node)
			}
			path := "/api/v1/jobs/" + url.PathEscape(args[0]) + "/logs"
			if !follow {
				var l struct {
					Lines []jobs.LogLine `json:"lines"`
				}
				if err := api.call(e, "GET", path+"?"+q.Encode(), nil, &l); err != nil {
					return fmt.Errorf("job logs: %w", err)
				}
				for _, line := range l.Lines {
					fmt.Fprintf(e.stdout, "%s: %s\n", line.Node, line.Line)
				}
				return nil
			}
			q.Set("follow", "1")
			resp, err := api.do(e, "GET", path+"?"+q.Encode(), nil, "text/plain")
			if err != nil {
				return fmt.Errorf("job logs: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("job logs: the hub answered %s", resp.Status)
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				fmt.Fprintln(e.stdout, sc.Text())
			}
			if err := sc.Err(); err != nil && !errors.Is(err, e.ctx.Err()) {
				return fmt.Errorf("job logs: %w", err)
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing lines as they come, until the job ends at every node")
	cmd.Flags().StringVar(&node, "node", "", "only this node's lines")
	return cmd
}

func newJobOutputsCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "outputs --hub URL JOB [--dir DIR]",
		Short: "List a job's released outputs, or with --dir download them to DIR/NODE/NAME (SHA-256 checked)",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.open(e, "job outputs")
			if err != nil {
				return err
			}
			base := "/api/v1/jobs/" + url.PathEscape(args[0]) + "/outputs"
			var l struct {
				Outputs []jobs.OutputInfo `json:"outputs"`
			}
			if err := api.call(e, "GET", base, nil, &l); err != nil {
				return fmt.Errorf("job outputs: %w", err)
			}
			for _, o := range l.Outputs {
				if dir == "" {
					fmt.Fprintf(e.stdout, "%s/%s\t%d bytes\tsha256:%s\n", o.Node, o.Name, o.Size, o.SHA256)
					continue
				}
				if err := downloadOutput(e, api, base, dir, o); err != nil {
					return fmt.Errorf("job outputs: %s/%s: %w", o.Node, o.Name, err)
				}
				fmt.Fprintf(e.stdout, "%s/%s/%s\n", dir, o.Node, o.Name)
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&dir, "dir", "", "download the outputs into this folder")
	return cmd
}

func downloadOutput(e *env, api jobAPI, base, dir string, o jobs.OutputInfo) error {
	if !jobs.ValidOutputName(o.Name) || !jobs.ValidOutputName(o.Node) {
		return errors.New("not a safe file name")
	}
	resp, err := api.do(e, "GET", base+"/"+url.PathEscape(o.Node)+"/"+url.PathEscape(o.Name), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the hub answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, o.Size+1))
	if err != nil {
		return err
	}
	if d := jobs.Digest(b); d != "sha256:"+o.SHA256 {
		return fmt.Errorf("the download's SHA-256 is %s, not %s", d, o.SHA256)
	}
	if err := os.MkdirAll(dir+"/"+o.Node, 0o755); err != nil {
		return err
	}
	return os.WriteFile(dir+"/"+o.Node+"/"+o.Name, b, 0o644)
}
