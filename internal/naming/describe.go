package naming

import "strings"

// Describe renders a change on one line for logs and events, e.g.
// "bind web-3 to i-0abc (10.0.0.7): new instance".
func Describe(c Change) string {
	var b strings.Builder
	switch c.Type {
	case Bind:
		b.WriteString("bind " + c.Hostname + " to " + c.InstanceID)
		if c.IP != "" {
			b.WriteString(" (" + c.IP + ")")
		}
		if len(c.Aliases) > 0 {
			b.WriteString(" aliases [" + strings.Join(c.Aliases, " ") + "]")
		}
	case Release:
		b.WriteString("release " + c.Hostname)
		if c.ExpectInstanceID != "" {
			b.WriteString(" from " + c.ExpectInstanceID)
		}
	case SetIP:
		b.WriteString("set ip of " + c.Hostname + " to " + c.IP)
	case SetAliases:
		b.WriteString("set aliases of " + c.Hostname + " to [" + strings.Join(c.Aliases, " ") + "]")
	default:
		b.WriteString(string(c.Type) + " " + c.Hostname)
	}
	if c.Reason != "" {
		b.WriteString(": " + c.Reason)
	}
	return b.String()
}
