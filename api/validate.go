package api

import (
	"errors"
	"fmt"
	"github.com/go-playground/validator/v10"
	"reflect"
	"slices"
	"strings"

	dsync "github.com/dashsync/dashsync/sync"
)

// newValidator returns the validator for request types. Field names in its errors are
// turned into client paths by fieldPath.
func newValidator() *validator.Validate {
	return validator.New(validator.WithRequiredStructEnabled())
}

// validate checks dst's struct tags; the failures become one validation_failed error
// whose details list every field, sorted, and whose message reads the first.
func (s *Server) validate(dst any) error {
	err := s.validator.Struct(dst)
	if err == nil {
		return nil
	}
	ves, ok := errors.AsType[validator.ValidationErrors](err)
	if !ok {
		return fmt.Errorf("validate %T: %w", dst, err)
	}
	root := reflect.TypeOf(dst)
	type failure struct {
		detail  dsync.FieldError
		message string
	}
	fs := make([]failure, 0, len(ves))
	for _, fe := range ves {
		field := fieldPath(root, fe.StructNamespace())
		fs = append(fs, failure{
			detail:  dsync.FieldError{Field: field, Rule: fe.Tag(), Param: fe.Param()},
			message: ruleMessage(field, fe),
		})
	}
	slices.SortFunc(fs, func(a, b failure) int { return strings.Compare(a.detail.Field, b.detail.Field) })
	e := &dsync.Error{Code: dsync.CodeValidation, Message: fs[0].message}
	if len(fs) > 1 {
		e.Message += fmt.Sprintf(" (and %d more)", len(fs)-1)
	}
	for _, f := range fs {
		e.Details = append(e.Details, f.detail)
	}
	return e
}

// ruleMessage says in words what a validator rule asks of field.
func ruleMessage(field string, fe validator.FieldError) string {
	p := fe.Param()
	unit := ""
	switch fe.Kind() {
	case reflect.String:
		unit = " characters"
	case reflect.Slice, reflect.Map, reflect.Array:
		unit = " entries"
	}
	switch fe.Tag() {
	case "required":
		return field + " is required"
	case "min", "gte":
		if p == "1" && unit != "" {
			return field + " must not be empty"
		}
		return fmt.Sprintf("%s must be at least %s%s", field, p, unit)
	case "max", "lte":
		return fmt.Sprintf("%s must be at most %s%s", field, p, unit)
	case "len":
		return fmt.Sprintf("%s must be exactly %s%s", field, p, unit)
	case "oneof":
		return fmt.Sprintf("%s must be one of: %s", field, strings.ReplaceAll(p, " ", ", "))
	case "uuid":
		return field + " must be a UUID"
	case "excluded_with":
		return field + " cannot be combined with the other fields"
	}
	return fmt.Sprintf("%s breaks the rule %q", field, fe.Tag())
}
