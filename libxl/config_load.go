package libxl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// LoadOptions tune LoadConfig.
type LoadOptions struct {
	// Overrides are extra `key=value` lines applied after the file, as
	// xl create's trailing arguments are: the last assignment wins.
	Overrides []string
	// XL is the xl binary that parses configs goxl's own parser cannot
	// express. Empty: $GOXL_XL, else Debian's /usr/lib/xen-4.17/bin/xl,
	// else xl in $PATH.
	XL string
	// NoXL keeps goxl's own parser only: a config using an xl key goxl
	// does not map fails with a ConfigNotSupported error naming the key.
	NoXL bool
}

// XLDryRunTimeout bounds `xl create -n` (it parses and prints; under
// emulation it still takes a few seconds).
var XLDryRunTimeout = 2 * time.Minute

// LoadConfigFile reads a domain config file; see LoadConfig.
func LoadConfigFile(path string, opts LoadOptions) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	return loadConfig(path, data, true, opts)
}

// LoadConfig turns a config in any of the forms goxl accepts into a
// Config:
//
//   - libxl JSON (the first non-blank byte is '{' or '['): a bare
//     libxl_domain_config, or `xl list -l` output (ParseJSONConfig);
//   - xl's config format: goxl's own parser (ParseXL) first. If it refuses
//     the config only because of xl keys it does not map (errors of kind
//     ConfigNotSupported), and xl is installed, xl's own parser builds it:
//     `xl create -n` prints the libxl_domain_config xl would create, which
//     goxl passes to libxl as a JSONConfig. Syntax errors, unknown keys
//     (typos: xl itself would ignore them) and bad values are never
//     handed on.
//
// Every error is a *ConfigError or ConfigErrors (errors.Is ErrConfig),
// except ErrNotSupported for an xl config in a build without cgo.
func LoadConfig(name string, data []byte, opts LoadOptions) (Config, error) {
	return loadConfig(name, data, false, opts)
}

func loadConfig(name string, data []byte, isFile bool, opts LoadOptions) (Config, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		if len(opts.Overrides) > 0 {
			return nil, &ConfigError{File: name, Msg: "key=value overrides apply to xl configs, not to libxl JSON"}
		}
		j, err := ParseJSONConfig(t)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) && ce.File == "" {
				ce.File = name
			}
			return nil, err
		}
		return j, nil
	}
	full := data
	if len(opts.Overrides) > 0 {
		// xl appends the overrides to the file's text the same way.
		full = append(append(append([]byte(nil), data...), '\n'), []byte(strings.Join(opts.Overrides, "\n")+"\n")...)
	}
	cfg, err := ParseXL(name, full)
	if err == nil {
		return cfg, nil
	}
	if opts.NoXL || !onlyNotSupported(err) {
		return nil, err
	}
	xl := findXL(opts.XL)
	if xl == "" {
		return nil, err
	}
	j, xlErr := xlDryRun(xl, name, data, isFile, opts.Overrides)
	if xlErr != nil {
		return nil, fmt.Errorf("%w\n%v", err, xlErr)
	}
	return j, nil
}

// onlyNotSupported reports whether err holds ConfigNotSupported errors
// and nothing else.
func onlyNotSupported(err error) bool {
	var list []error
	var ces ConfigErrors
	if errors.As(err, &ces) {
		for _, ce := range ces {
			list = append(list, ce)
		}
	} else {
		list = []error{err}
	}
	for _, e := range list {
		if !errors.Is(e, ErrConfigNotSupported) {
			return false
		}
	}
	return len(list) > 0
}

func findXL(explicit string) string {
	for _, c := range []string{explicit, os.Getenv("GOXL_XL"), "/usr/lib/xen-4.17/bin/xl"} {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	if p, err := exec.LookPath("xl"); err == nil {
		return p
	}
	return ""
}

// xlDryRun runs `xl create -n` and returns the libxl JSON it prints.
func xlDryRun(xl, name string, data []byte, isFile bool, overrides []string) (JSONConfig, error) {
	path := name
	if !isFile {
		dir, err := os.MkdirTemp("", "goxl-cfg-")
		if err != nil {
			return "", &ConfigError{File: name, Msg: err.Error()}
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "domain.cfg")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", &ConfigError{File: name, Msg: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), XLDryRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, xl, append([]string{"create", "-n", path}, overrides...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &ConfigError{File: name, Msg: fmt.Sprintf("xl's parser (%s create -n) refused it: %v: %s", xl, err, strings.TrimSpace(stderr.String()))}
	}
	j, err := ParseJSONConfig(stdout.Bytes())
	if err != nil {
		return "", &ConfigError{File: name, Msg: fmt.Sprintf("%s create -n printed no usable libxl JSON: %v", xl, err)}
	}
	return j, nil
}
