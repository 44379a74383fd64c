package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// reserved are the places inside a run that inputs may not cover.
var reserved = []string{"/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/dev", "/tmp", "/out", "/etc", "/sys", "/run"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validate checks the parts of a spec every executor shares.
func validate(spec Spec, needOutput, needCommand bool) error {
	return validateSpec(spec, needOutput, needCommand, true)
}

// validateSpec checks a spec; hostMounts says the inputs are paths of
// this machine that must exist.
func validateSpec(spec Spec, needOutput, needCommand, hostMounts bool) error {
	if needCommand && (len(spec.Command) == 0 || spec.Command[0] == "") {
		return fmt.Errorf("%w: empty command", ErrInvalid)
	}
	for _, a := range spec.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: a command argument holds a NUL byte", ErrInvalid)
		}
	}
	for k, v := range spec.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("%w: environment variable name %q", ErrInvalid, k)
		}
		// The loader's variables would reach the sandbox's setup
		// programs, which hold privileges a moment.
		if strings.HasPrefix(k, "LD_") || k == "GCONV_PATH" || k == "MALLOC_TRACE" || k == "LOCPATH" || k == "NLSPATH" || k == "HOSTALIASES" {
			return fmt.Errorf("%w: environment variable %s is not allowed", ErrInvalid, k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: environment variable %s holds a NUL byte", ErrInvalid, k)
		}
	}
	if needOutput {
		if spec.Output == "" || !filepath.IsAbs(spec.Output) || strings.ContainsAny(spec.Output, ":,\x00") {
			return fmt.Errorf("%w: the output folder must be an absolute host path without ':' or ','", ErrInvalid)
		}
	}
	seen := map[string]bool{}
	for _, m := range spec.Inputs {
		if err := checkMount(m, hostMounts); err != nil {
			return err
		}
		t := filepath.Clean(m.Target)
		if seen[t] {
			return fmt.Errorf("%w: two inputs at %s", ErrInvalid, t)
		}
		seen[t] = true
	}
	return nil
}

func checkMount(m Mount, host bool) error {
	if host && (m.Host == "" || !filepath.IsAbs(m.Host)) {
		return fmt.Errorf("%w: input host path must be absolute", ErrInvalid)
	}
	if m.Target == "" || !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) != m.Target || strings.ContainsAny(m.Target, ":,\x00") {
		return fmt.Errorf("%w: input target %q must be a clean absolute path", ErrInvalid, m.Target)
	}
	for _, r := range reserved {
		if m.Target == r || (r != "/" && strings.HasPrefix(m.Target, r+"/")) {
			return fmt.Errorf("%w: input target %q is a reserved place", ErrInvalid, m.Target)
		}
	}
	if !host {
		if strings.IndexByte(m.Host, 0) >= 0 || m.Host == "" {
			return fmt.Errorf("%w: input volume %q", ErrInvalid, m.Host)
		}
		return nil
	}
	if strings.ContainsAny(m.Host, ":,\x00") {
		return fmt.Errorf("%w: input host path holds ':' or ','", ErrInvalid)
	}
	if _, err := os.Stat(m.Host); err != nil {
		return fmt.Errorf("%w: input %s: %v", ErrInvalid, m.Target, err)
	}
	return nil
}

// FileDigest returns the SHA-256 digest of a file as "sha256:<hex>", the
// form of Config.AllowPrograms.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Program returns the host path of the file a Process run executes, the
// one whose digest must be on the allow-list: Command[0] or, right after
// it, Command[1] when it names a regular file inside one of the inputs
// (so in "/usr/bin/python3 /in/train.py" the script), else Command[0]
// itself, an absolute path or a name found in /usr/bin, /bin, /usr/sbin
// or /sbin. A script further on is not the program: in
// "/bin/sh -c CODE /in/ok.sh" CODE runs, and the shell is judged.
func Program(spec Spec) (string, error) {
	for _, a := range spec.Command[:min(2, len(spec.Command))] {
		if !filepath.IsAbs(a) {
			continue
		}
		a = filepath.Clean(a)
		for _, m := range spec.Inputs {
			rel, err := filepath.Rel(m.Target, a)
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			host := filepath.Join(m.Host, rel)
			fi, err := os.Lstat(host)
			if err != nil {
				continue
			}
			if !fi.Mode().IsRegular() {
				return "", fmt.Errorf("%w: the program %s is not a regular file", ErrInvalid, a)
			}
			return host, nil
		}
	}
	c := spec.Command[0]
	if filepath.IsAbs(c) {
		return filepath.EvalSymlinks(c)
	}
	if strings.Contains(c, "/") {
		return "", fmt.Errorf("%w: the program must be an absolute path or a system command", ErrInvalid)
	}
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(d, c)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return filepath.EvalSymlinks(p)
		}
	}
	return "", fmt.Errorf("%w: program %q not found", ErrInvalid, c)
}

func digestSet(list []string) map[string]bool {
	m := map[string]bool{}
	for _, d := range list {
		d = strings.ToLower(strings.TrimSpace(d))
		if d != "" {
			m[d] = true
		}
	}
	return m
}
