package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logFlags are the one logging flag set of every long-running command:
// controller-runtime's zap options (--zap-log-level, --zap-encoder,
// --zap-devel, --zap-stacktrace-level, --zap-time-encoding), as a
// kubebuilder manager has, plus 1.x's --loglevel as another way to give
// the level, so old supervisord lines keep working.
type logFlags struct {
	zap zap.Options
	// level1x is --loglevel: DEBUG, INFO, WARNING or ERROR.
	level1x string
	fl      *pflag.FlagSet
}

// registerForReport is register for a command whose output is the
// answer (plan, adopt, get, describe, demo): it logs only errors, to
// stderr, unless a level is given.
func (f *logFlags) registerForReport(fl *pflag.FlagSet) {
	f.register(fl)
	f.zap.Level = zapcore.ErrorLevel
}

// given reports whether a log level was given on the command line.
func (f *logFlags) given() bool {
	return f.fl != nil && (f.fl.Changed("zap-log-level") || f.fl.Changed("loglevel"))
}

func (f *logFlags) register(fl *pflag.FlagSet) {
	f.fl = fl
	// A failed pass or a store outage is one log line, not one line and a
	// stack trace; --zap-stacktrace-level brings them back.
	f.zap.StacktraceLevel = zapcore.PanicLevel
	gofs := flag.NewFlagSet("zap", flag.ContinueOnError)
	f.zap.BindFlags(gofs)
	fl.AddGoFlagSet(gofs)
	fl.StringVar(&f.level1x, "loglevel", "", "1.x's log level: DEBUG, INFO, WARNING or ERROR (another way to give --zap-log-level)")
}

// logger builds the zap logger the flags describe, writing to w.
func (f *logFlags) logger(w io.Writer) (logr.Logger, error) {
	opts := f.zap
	if opts.StacktraceLevel == nil {
		opts.StacktraceLevel = zapcore.PanicLevel
	}
	if f.level1x != "" {
		if f.fl != nil && f.fl.Changed("zap-log-level") {
			return logr.Logger{}, fmt.Errorf("--loglevel %q and --zap-log-level: give one of them", f.level1x)
		}
		lvl, err := parse1xLevel(f.level1x)
		if err != nil {
			return logr.Logger{}, err
		}
		opts.Level = lvl
	}
	opts.DestWriter = w
	return zap.New(zap.UseFlagOptions(&opts)), nil
}

// parse1xLevel reads 1.x's --loglevel (Python logging's names).
func parse1xLevel(s string) (zapcore.Level, error) {
	switch strings.ToUpper(s) {
	case "DEBUG":
		return zapcore.DebugLevel, nil
	case "INFO":
		return zapcore.InfoLevel, nil
	case "WARNING", "WARN":
		return zapcore.WarnLevel, nil
	case "ERROR", "CRITICAL":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("--loglevel %q: want DEBUG, INFO, WARNING or ERROR", s)
}
