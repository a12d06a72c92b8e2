package table

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// Kind is the family of an output format, as kubectl's -o names it.
type Kind string

const (
	KindTable         Kind = ""
	KindWide          Kind = "wide"
	KindJSON          Kind = "json"
	KindYAML          Kind = "yaml"
	KindName          Kind = "name"
	KindJSONPath      Kind = "jsonpath"
	KindCustomColumns Kind = "custom-columns"
)

// Format is a parsed -o value with --no-headers. It is comparable, so the
// plain formats below can be matched with ==; the template of jsonpath and
// custom-columns sits behind a pointer for that reason.
type Format struct {
	kind      Kind
	noHeaders bool
	tmpl      *template
}

// The formats without a template.
var (
	Table = Format{}
	Wide  = Format{kind: KindWide}
	JSON  = Format{kind: KindJSON}
	YAML  = Format{kind: KindYAML}
	Name  = Format{kind: KindName}
)

// Formats lists the values -o accepts (for help and completion).
var Formats = []string{string(KindWide), string(KindJSON), string(KindYAML), string(KindName), "jsonpath=", "custom-columns="}

// Kind returns the format's family.
func (f Format) Kind() Kind { return f.kind }

// Tabular reports whether f prints a table with headers (table, wide,
// custom-columns): the formats --no-headers applies to.
func (f Format) Tabular() bool {
	return f.kind == KindTable || f.kind == KindWide || f.kind == KindCustomColumns
}

// WithoutHeaders returns f printing no header line (--no-headers).
func (f Format) WithoutHeaders() Format {
	f.noHeaders = true
	return f
}

// template is what jsonpath and custom-columns print: one JSONPath, or one
// a column.
type template struct {
	path    *jsonpath.JSONPath
	headers []string
	columns []*jsonpath.JSONPath
}

// ParseFormat checks an -o value: table (""), wide, json, yaml, name,
// jsonpath=TEMPLATE or custom-columns=HEADER:.field,...
func ParseFormat(s string) (Format, error) {
	kind, arg, hasArg := strings.Cut(s, "=")
	switch Kind(kind) {
	case KindTable, KindWide, KindJSON, KindYAML, KindName:
		if !hasArg {
			return Format{kind: Kind(kind)}, nil
		}
	case KindJSONPath:
		if !hasArg || strings.TrimSpace(arg) == "" {
			return Format{}, fmt.Errorf("-o %q: jsonpath needs a template, e.g. -o jsonpath='{.items[*].hostname}'", s)
		}
		p, err := parsePath("jsonpath", arg)
		if err != nil {
			return Format{}, fmt.Errorf("-o %q: %w", s, err)
		}
		return Format{kind: KindJSONPath, tmpl: &template{path: p}}, nil
	case KindCustomColumns:
		t, err := parseColumns(arg)
		if err != nil {
			return Format{}, fmt.Errorf("-o %q: %w", s, err)
		}
		return Format{kind: KindCustomColumns, tmpl: t}, nil
	}
	return Format{}, fmt.Errorf("-o %q: want one of %s", s, strings.Join(Formats, ", "))
}

func parsePath(name, text string) (*jsonpath.JSONPath, error) {
	p := jsonpath.New(name).AllowMissingKeys(true)
	if err := p.Parse(text); err != nil {
		return nil, fmt.Errorf("template %q: %w", text, err)
	}
	return p, nil
}

// relaxed accepts a column's path the way kubectl's custom-columns does:
// ".hostname", "hostname", "{.hostname}" all mean {.hostname}.
var relaxed = regexp.MustCompile(`^\{?\.?([^{}]+)\}?$`)

func parseColumns(spec string) (*template, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("custom-columns needs at least one HEADER:.field, e.g. -o custom-columns=NAME:.hostname,IP:.ip")
	}
	t := &template{}
	for _, col := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(col, ":")
		m := relaxed.FindStringSubmatch(path)
		if !ok || header == "" || m == nil {
			return nil, fmt.Errorf("column %q: want HEADER:.field", col)
		}
		p, err := parsePath(header, "{."+strings.TrimPrefix(m[1], ".")+"}")
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", col, err)
		}
		t.headers = append(t.headers, header)
		t.columns = append(t.columns, p)
	}
	return t, nil
}

// generic turns v into what JSONPath walks: the maps and slices of its
// JSON form, so a template names the fields -o json prints.
func generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding json: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decoding json: %w", err)
	}
	return out, nil
}

// printPath prints v through f's JSONPath, as kubectl -o jsonpath does;
// a template that fails half-way prints nothing.
func printPath[T any](w io.Writer, f Format, v T) error {
	obj, err := generic(v)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := f.tmpl.path.Execute(&b, obj); err != nil {
		return fmt.Errorf("-o jsonpath: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// listOf is the document -o jsonpath sees for a list: kubectl's List, so
// the templates kubectl users know ({.items[*]...}) work.
func listOf[T any](items []T) map[string]any {
	if items == nil {
		items = []T{}
	}
	return map[string]any{"kind": "List", "items": items}
}

// columnRows evaluates f's columns on each item.
func columnRows[T any](f Format, items []T) ([][]string, error) {
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		obj, err := generic(it)
		if err != nil {
			return nil, err
		}
		row := make([]string, 0, len(f.tmpl.columns))
		for i, p := range f.tmpl.columns {
			cell, err := evalCell(p, obj)
			if err != nil {
				return nil, fmt.Errorf("-o custom-columns: column %s: %w", f.tmpl.headers[i], err)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// evalCell renders one cell: values joined by commas, <none> when the
// field is missing or null.
func evalCell(p *jsonpath.JSONPath, obj any) (string, error) {
	results, err := p.FindResults(obj)
	if err != nil {
		return "", err
	}
	var vals []string
	for _, r := range results {
		for _, v := range r {
			if !v.IsValid() || (v.CanInterface() && v.Interface() == nil) {
				continue
			}
			var b bytes.Buffer
			if err := p.PrintResults(&b, []reflect.Value{v}); err != nil {
				return "", err
			}
			vals = append(vals, b.String())
		}
	}
	if len(vals) == 0 {
		return none, nil
	}
	return strings.Join(vals, ","), nil
}

// header returns h, or nil under --no-headers.
func (f Format) header(h []string) []string {
	if f.noHeaders {
		return nil
	}
	return h
}

// printColumns prints items as -o custom-columns asks.
func printColumns[T any](w io.Writer, f Format, items []T) error {
	rows, err := columnRows(f, items)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	return Write(w, f.header(f.tmpl.headers), rows)
}
