package graph

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// TestInputCheckCoversEveryTextInput keeps MaxTextLength and the schema
// in step: every text argument and input field has an entry, and every
// entry names one, so a new or renamed field cannot go unbounded or fall
// back to the default without a decision.
func TestInputCheckCoversEveryTextInput(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	text := map[string]bool{}
	for _, def := range schema.Types {
		for _, f := range def.Fields {
			if def.Kind == ast.InputObject && isText(f.Type.Name()) {
				text[def.Name+"."+f.Name] = true
			}
			if strings.HasPrefix(def.Name, "__") || strings.HasPrefix(f.Name, "__") {
				continue
			}
			for _, a := range f.Arguments {
				if isText(a.Type.Name()) {
					text[f.Name+"."+a.Name] = true
				}
			}
		}
	}
	for key, max := range MaxTextLength {
		if !text[key] {
			t.Errorf("MaxTextLength lists %s, which is no text argument or input field of the schema", key)
		}
		if max <= 0 {
			t.Errorf("MaxTextLength[%s] = %d", key, max)
		}
	}
	for key := range text {
		if _, ok := MaxTextLength[key]; !ok {
			t.Errorf("%s takes text but MaxTextLength gives it no bound", key)
		}
	}
}

func isText(name string) bool { return name == "String" }
