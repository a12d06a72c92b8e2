package main

import (
	"fmt"
	"strings"
)

// translateLegacyArgs turns a 1.x command line (`aerostat --update --daemon
// --server=HOST`) into the 2.x commands it means, run in 1.x's order:
// register, then change-master, then update. Anything that is not a 1.x
// command line (a subcommand, --help, no arguments) is returned unchanged
// as the only command. A 1.x line with an option 1.x did not have gives an
// error, so a typo in a supervisord line is not silently ignored.
func translateLegacyArgs(args []string) ([][]string, error) {
	if !isLegacy(args) {
		return [][]string{args}, nil
	}
	l, err := parseLegacyArgs(args)
	if err != nil {
		return nil, err
	}
	return l.commands()
}

// legacyLine is a parsed 1.x command line: its actions, and the options
// passed on to every command (common) or to update/agent only.
type legacyLine struct {
	register, changeMaster, update, daemon, dryRun, offline bool
	common, updateOnly                                      []string
}

func parseLegacyArgs(args []string) (legacyLine, error) {
	var l legacyLine
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		takeValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("1.x option %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		flag := func() error {
			if hasValue {
				return fmt.Errorf("1.x option %s takes no value", name)
			}
			return nil
		}
		var err error
		switch name {
		case "--register":
			l.register, err = true, flag()
		case "--change-master":
			l.changeMaster, err = true, flag()
		case "--update":
			l.update, err = true, flag()
		case "--daemon":
			l.daemon, err = true, flag()
		case "--dryrun":
			l.dryRun, err = true, flag()
		case "--offline":
			l.offline, err = true, flag()
		case "--server", "--loglevel":
			var v string
			v, err = takeValue()
			l.common = append(l.common, name+"="+v)
		case "--legacy-updater":
			var v string
			v, err = takeValue()
			l.updateOnly = append(l.updateOnly, name+"="+v)
		default:
			err = fmt.Errorf("unknown 1.x option %q (1.x options: --register --change-master --update --daemon --server --loglevel --legacy-updater --dryrun --offline)", args[i])
		}
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

// commands are the 2.x command lines that do what the 1.x line asked, in
// 1.x's order: register, change master, update.
func (l legacyLine) commands() ([][]string, error) {
	common := l.common
	if l.dryRun {
		common = append(common, "--dry-run")
	}
	var cmds [][]string
	claimArgs := common
	if l.offline {
		claimArgs = append(append([]string{}, common...), "--offline")
	}
	if l.register {
		reg := append([]string{"register"}, claimArgs...)
		// 1.x registration set the system hostname. Not with --offline:
		// that is a workstation test run, whose hostname must stay.
		if !l.offline && !l.dryRun {
			reg = append(reg, "--set-hostname")
		}
		cmds = append(cmds, reg)
	}
	if l.changeMaster {
		cmds = append(cmds, append([]string{"promote"}, claimArgs...))
	}
	if l.update || l.daemon {
		cmd := "update"
		if l.daemon {
			cmd = "agent"
		}
		cmds = append(cmds, append(append([]string{cmd}, common...), l.updateOnly...))
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("1.x command line without an action: add --register, --change-master or --update")
	}
	return cmds, nil
}

// isLegacy reports whether args look like a 1.x command line: options
// only, at least one of them 1.x's.
func isLegacy(args []string) bool {
	if len(args) == 0 || !strings.HasPrefix(args[0], "--") {
		return false
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--register", "--change-master", "--update", "--daemon", "--dryrun", "--offline", "--legacy-updater":
			return true
		}
	}
	return false
}
