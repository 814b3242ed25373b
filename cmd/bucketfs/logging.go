package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
)

// newLogger logs to --log-file; else to stderr while attached, and to
// syslog (the journal, where systemd runs) in the background. Lines are
// text, or JSON with --log-format json.
func newLogger(opts Options, background bool) (*slog.Logger, io.Closer, error) {
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	toSyslog := false
	switch {
	case opts.LogFile != "":
		f, err := openLogFile(opts.LogFile)
		if err != nil {
			return nil, nil, err
		}
		w, closer = f, f
	case background:
		if s, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "bucketfs"); err == nil {
			w, closer, toSyslog = s, s, true
		} else {
			w = io.Discard // no syslog (a container, say): --log-file is the way
		}
	}
	level := slog.LevelInfo
	if opts.Debug {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	if toSyslog {
		// syslog stamps each message itself.
		hopts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if opts.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(w, hopts)), closer, nil
}

// checkLogFile fails early, before the mount goes to the background, when
// the log file cannot be written.
func checkLogFile(path string) error {
	if path == "" {
		return nil
	}
	f, err := openLogFile(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// openLogFile opens the log file for appending; its error is one line.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, fmt.Errorf("--log-file %s: %w", path, err)
	}
	return f, nil
}
