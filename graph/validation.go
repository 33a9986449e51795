package graph

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// ProdValidationRules are the validation rules of a production server:
// the standard ones, none of which suggests a name (of a field, argument,
// type, enum value or input field) the document did not use, plus a rule
// refusing introspection. A misspelt name answered with "Did you mean"
// hands out the schema piece by piece, which is what turning introspection
// off is for.
func ProdValidationRules() *rules.Rules {
	r := rules.NewDefaultRules()
	for _, swap := range []struct {
		name string
		rule core.Rule
	}{
		{rules.FieldsOnCorrectTypeRule.Name, rules.FieldsOnCorrectTypeRuleWithoutSuggestions},
		{rules.KnownArgumentNamesRule.Name, rules.KnownArgumentNamesRuleWithoutSuggestions},
		{rules.KnownTypeNamesRule.Name, rules.KnownTypeNamesRuleWithoutSuggestions},
		{rules.ScalarLeafsRule.Name, rules.ScalarLeafsRuleWithoutSuggestions},
		{rules.ValuesOfCorrectTypeRule.Name, rules.ValuesOfCorrectTypeRuleWithoutSuggestions},
	} {
		r.RemoveRule(swap.name)
		r.AddRule(swap.rule.Name, swap.rule.RuleFunc)
	}
	r.AddRule(noIntrospection.Name, noIntrospection.RuleFunc)
	return r
}

// noIntrospection refuses __schema and __type, through which a client
// reads the schema, as a validation error: without it the executor
// answers them with an internal error, one server log line per request.
// __typename stays, since clients ask it to tell the members of a union
// apart and to key their caches.
var noIntrospection = core.Rule{
	Name: "NoIntrospection",
	RuleFunc: func(observers *core.Events, addError core.AddErrFunc) {
		observers.OnField(func(_ *core.Walker, field *ast.Field) {
			if field.Name == "__schema" || field.Name == "__type" {
				addError(core.Message("introspection is not available"), core.At(field.Position))
			}
		})
	},
}
