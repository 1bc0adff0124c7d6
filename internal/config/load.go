package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Load reads the configuration from the process environment, reads the
// secrets given as files (ReadSecretFiles) and validates it. Its error lists
// every problem at once: values that do not parse as well as settings that
// cannot work. The warnings name BRIDGE_* variables the bridge does not
// know, such as a misspelled one, which would otherwise be ignored.
func Load() (Config, []string, error) {
	var c Config
	vars := variables(&c)
	var errs []error
	// envconfig.Process would stop at the first value it cannot parse and
	// hide the others; each variable is read on its own instead, with the
	// same names, defaults and parsing.
	for _, v := range vars {
		s, ok := os.LookupEnv(v.key)
		if !ok {
			if v.def == "" {
				continue
			}
			s = v.def
		}
		if err := set(v.field, s); err != nil {
			// Only numbers, booleans and durations fail to parse, so no
			// secret is quoted. The default stands in, so that the checks
			// below do not report the same variable again.
			errs = append(errs, fmt.Errorf("%s=%q is not a valid %s", v.key, s, baseType(v.field.Type())))
			v.field.SetZero()
			if v.def != "" {
				_ = set(v.field, v.def)
			}
		}
	}
	if err := c.ReadSecretFiles(); err != nil {
		errs = append(errs, problems(err)...)
	}
	errs = append(errs, problems(c.Validate())...)
	return c, unknownVariables(os.Environ(), vars), errors.Join(errs...)
}

// variable is one BRIDGE_* variable and the field of a Config it sets.
type variable struct {
	key, def, desc string
	field          reflect.Value
}

// variables lists the variables of c in the order of its fields, named as
// envconfig names them. envconfig.Usaget is its only public way to walk
// them: a template that hands every variable to a function.
func variables(c *Config) []variable {
	var vars []variable
	collect := func(key string, field any, tags reflect.StructTag) string {
		vars = append(vars, variable{key: key, def: tags.Get("default"), desc: tags.Get("desc"), field: field.(reflect.Value)})
		return ""
	}
	tmpl := template.Must(template.New("variables").Funcs(template.FuncMap{"collect": collect}).
		Parse(`{{range .}}{{collect .Key .Field .Tags}}{{end}}`))
	if err := envconfig.Usaget(Prefix, c, io.Discard, tmpl); err != nil {
		panic(fmt.Sprintf("config: %v", err)) // Config is a valid envconfig specification
	}
	return vars
}

// set parses s into field as envconfig does for the kinds a Config holds:
// strings, booleans, integers, floats, durations and pointers to them.
func set(field reflect.Value, s string) error {
	if field.Kind() == reflect.Pointer {
		p := reflect.New(field.Type().Elem())
		if err := set(p.Elem(), s); err != nil {
			return err
		}
		field.Set(p)
		return nil
	}
	var err error
	switch k := field.Kind(); {
	case field.Type() == reflect.TypeFor[time.Duration]():
		var d time.Duration
		d, err = time.ParseDuration(s)
		field.SetInt(int64(d))
	case k == reflect.String:
		field.SetString(s)
	case k == reflect.Bool:
		var b bool
		b, err = strconv.ParseBool(s)
		field.SetBool(b)
	case k >= reflect.Int && k <= reflect.Int64:
		var n int64
		n, err = strconv.ParseInt(s, 0, field.Type().Bits())
		field.SetInt(n)
	case k == reflect.Float32 || k == reflect.Float64:
		var f float64
		f, err = strconv.ParseFloat(s, field.Type().Bits())
		field.SetFloat(f)
	default:
		err = fmt.Errorf("unsupported type %s", field.Type())
	}
	return err
}

func baseType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// unknownVariables warns of each BRIDGE_* variable in env that is none of
// vars, naming the one it most likely misspells.
func unknownVariables(env []string, vars []variable) []string {
	var warnings []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix+"_") || slices.ContainsFunc(vars, func(v variable) bool { return v.key == name }) {
			continue
		}
		w := "unknown variable " + name
		best, bestDistance := "", 4 // more edits than 3 is another name, not a typo
		for _, v := range vars {
			if d := editDistance(name, v.key); d < bestDistance {
				best, bestDistance = v.key, d
			}
		}
		if best != "" {
			w += "; did you mean " + best + "?"
		}
		warnings = append(warnings, w)
	}
	slices.Sort(warnings)
	return warnings
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range len(a) {
		cur[0] = i + 1
		for j := range len(b) {
			cost := 1
			if a[i] == b[j] {
				cost = 0
			}
			cur[j+1] = min(prev[j+1]+1, cur[j]+1, prev[j]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Environ returns the BRIDGE_* variables Load reads back as c, secrets
// included, for a child process that is to run with c (a *_FILE path that
// ReadSecretFiles read is passed on with its secret, which Load refuses).
func (c Config) Environ() []string {
	var env []string
	for _, v := range variables(&c) {
		f := v.field
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		var s string
		switch k := f.Kind(); {
		case f.Type() == reflect.TypeFor[time.Duration]():
			s = time.Duration(f.Int()).String()
		case k == reflect.String:
			s = f.String() // the value of a providers.Secret too, not its String method
		case k == reflect.Bool:
			s = strconv.FormatBool(f.Bool())
		case k >= reflect.Int && k <= reflect.Int64:
			s = strconv.FormatInt(f.Int(), 10)
		case k == reflect.Float32 || k == reflect.Float64:
			s = strconv.FormatFloat(f.Float(), 'g', -1, f.Type().Bits())
		}
		env = append(env, v.key+"="+s)
	}
	return env
}

// PrintVariables writes the table `bridge config` prints: every variable
// with its default and its meaning (not the values of this environment).
func PrintVariables(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range variables(&Config{}) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.key, v.def, v.desc)
	}
	return tw.Flush()
}

// Set assigns BRIDGE_* variables given as NAME=VALUE to c, as Load would
// read them from the environment, for configurations built in code (the
// sandbox, the tests). A name Load does not know is an error.
func (c *Config) Set(env ...string) error {
	vars := variables(c)
	var errs []error
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(vars, func(v variable) bool { return v.key == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("unknown variable %s", name))
			continue
		}
		if err := set(vars[i].field, value); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a valid %s", name, baseType(vars[i].field.Type())))
		}
	}
	return errors.Join(errs...)
}
