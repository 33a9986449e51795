package graph

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
)

// MaxTextLength is the longest text, in characters, each input takes,
// keyed by argument ("field.argument") or input field ("Input.field").
// A text input not listed takes at most DefaultMaxTextLength, an ID at
// most MaxIDLength. The use-cases in db/ check the finer rules (an
// email's form, a name that is not blank); these bounds are what no
// request may exceed, whatever it asks.
var MaxTextLength = map[string]int{
	"requestLoginCode.email":                  254,
	"verifyLoginCode.email":                   254,
	"verifyLoginCode.code":                    16,
	"refreshSession.refreshToken":             512,
	"signUpForShift.idempotencyKey":           100,
	"registerDevice.token":                    4096,
	"unregisterDevice.token":                  4096,
	"callForCoverage.message":                 db.MaxCoverageMessage,
	"openShifts.after":                        db.MaxCursorLength,
	"jobActions.after":                        db.MaxCursorLength,
	"myShifts.after":                          db.MaxCursorLength,
	"picketLines.after":                       db.MaxCursorLength,
	"signups.after":                           db.MaxCursorLength,
	"shifts.after":                            db.MaxCursorLength,
	"picketLineEvents.after":                  200,
	"myEvents.after":                          200,
	"UpdateContactInput.name":                 200,
	"UpdateContactInput.email":                254,
	"UpdateContactInput.phone":                40,
	"CreateJobActionInput.name":               200,
	"CreateJobActionInput.employer":           200,
	"UpdateJobActionInput.name":               200,
	"UpdateJobActionInput.employer":           200,
	"CreatePicketLineInput.name":              200,
	"CreatePicketLineInput.address":           500,
	"UpdatePicketLineInput.name":              200,
	"UpdatePicketLineInput.address":           500,
	"PostAnnouncementInput.body":              db.MaxAnnouncementLength,
	"NotificationPreferencesInput.quietStart": 5,
	"NotificationPreferencesInput.quietEnd":   5,
	"NotificationPreferencesInput.timeZone":   64,
}

// Bounds on inputs that MaxTextLength does not list.
const (
	DefaultMaxTextLength = 2000
	MaxIDLength          = 64
)

// InputCheck refuses, before anything runs, an operation whose arguments
// (inline or from variables, over HTTP or a websocket) hold text with a
// NUL character, bytes that are not UTF-8, or more characters than its
// limit, or a Float that is not a finite number. The answer is
// BAD_USER_INPUT with extensions.field naming the argument's path, e.g.
// "input.name".
func InputCheck(schema *ast.Schema) graphql.HandlerExtension { return inputCheck{schema: schema} }

type inputCheck struct{ schema *ast.Schema }

func (inputCheck) ExtensionName() string                   { return "InputCheck" }
func (inputCheck) Validate(graphql.ExecutableSchema) error { return nil }

func (c inputCheck) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	w := walker{schema: c.schema, doc: oc.Doc, vars: oc.Variables, seen: map[string]bool{}}
	if err := w.selections(oc.Operation.SelectionSet); err != nil {
		err.Locations = nil
		return err
	}
	return nil
}

type walker struct {
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
	seen   map[string]bool
}

func (w walker) selections(set ast.SelectionSet) *gqlerror.Error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if err := w.field(s); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := w.selections(s.SelectionSet); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if w.seen[s.Name] {
				continue
			}
			w.seen[s.Name] = true
			if f := w.doc.Fragments.ForName(s.Name); f != nil {
				if err := w.selections(f.SelectionSet); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (w walker) field(f *ast.Field) *gqlerror.Error {
	for _, arg := range f.Arguments {
		var def *ast.ArgumentDefinition
		if f.Definition != nil {
			def = f.Definition.Arguments.ForName(arg.Name)
		}
		if def == nil {
			continue
		}
		v, err := arg.Value.Value(w.vars)
		if err != nil {
			continue
		}
		if err := w.value(v, def.Type, arg.Name, f.Name+"."+arg.Name); err != nil {
			return err
		}
	}
	return w.selections(f.SelectionSet)
}

// value checks v, of type t, found at path; key is its MaxTextLength entry.
func (w walker) value(v any, t *ast.Type, path, key string) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return w.value(v, t.Elem, path, key)
		}
		for i, e := range list {
			if err := w.value(e, t.Elem, path+"["+strconv.Itoa(i)+"]", key); err != nil {
				return err
			}
		}
		return nil
	}
	if def := w.schema.Types[t.NamedType]; def != nil && def.Kind == ast.InputObject {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for _, fd := range def.Fields {
			if err := w.value(obj[fd.Name], fd.Type, path+"."+fd.Name, def.Name+"."+fd.Name); err != nil {
				return err
			}
		}
		return nil
	}
	switch x := v.(type) {
	case string:
		if t.NamedType == "Float" {
			return finite(x, path)
		}
		return text(x, path, textLimit(t.NamedType, key))
	case json.Number:
		if t.NamedType == "Float" {
			return finite(x.String(), path)
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return badInput(path, "must be a finite number")
		}
	}
	return nil
}

func textLimit(typ, key string) int {
	if n, ok := MaxTextLength[key]; ok {
		return n
	}
	if typ == "ID" {
		return MaxIDLength
	}
	return DefaultMaxTextLength
}

// text refuses NUL, which PostgreSQL cannot store in text, and bytes that
// were not UTF-8: JSON decoding turns those into U+FFFD, so that character
// stands for them.
func text(s, path string, max int) *gqlerror.Error {
	switch {
	case strings.ContainsRune(s, 0):
		return badInput(path, "must not contain the NUL character")
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return badInput(path, "must be valid UTF-8 text")
	case utf8.RuneCountInString(s) > max:
		return badInput(path, "must be at most "+strconv.Itoa(max)+" characters")
	}
	return nil
}

func finite(s, path string) *gqlerror.Error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return badInput(path, "must be a finite number")
	}
	return nil
}

func badInput(path, msg string) *gqlerror.Error {
	err := gqlerror.Errorf("%s %s", path, msg)
	err.Extensions = map[string]any{"code": string(db.CodeBadUserInput), "field": path}
	return err
}
