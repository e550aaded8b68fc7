// envoy-validate parses Envoy bootstrap files (YAML or JSON) with Envoy's own
// generated Go types (go-control-plane) and runs their validation rules
// (protoc-gen-validate's ValidateAll), including every typed_config packed in
// an Any, which ValidateAll alone does not descend into.
//
//	envoy-validate FILE...
//
// Prints one line per file ("ok FILE: N typed configs validated" or the
// errors) and exits 1 when any file fails.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Extensions the repo's bootstraps name in typed_config (@type). A new
	// one fails with "unable to resolve": add its package here.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/override_host/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

type validator interface{ ValidateAll() error }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: envoy-validate FILE...")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		n, errs := check(file)
		if len(errs) > 0 {
			failed = true
			for _, e := range errs {
				fmt.Printf("FAIL %s: %s\n", file, e)
			}
			continue
		}
		fmt.Printf("ok %s: %d typed configs validated\n", file, n)
	}
	if failed {
		os.Exit(1)
	}
}

func check(file string) (int, []string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0, []string{err.Error()}
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return 0, []string{"yaml: " + err.Error()}
	}
	var b bootstrapv3.Bootstrap
	// Strict: an unknown field or an unresolvable @type is an error.
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &b); err != nil {
		return 0, []string{"parse: " + err.Error()}
	}
	var errs []string
	count := 0
	validate(&b, "bootstrap", &errs, &count)
	sort.Strings(errs)
	return count, errs
}

// validate runs m's own rules, then looks for Any fields anywhere below it and
// validates what they hold (ValidateAll covers plain nested messages itself).
func validate(m proto.Message, path string, errs *[]string, count *int) {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			var multi interface{ AllErrors() []error }
			if errors.As(err, &multi) {
				for _, e := range multi.AllErrors() {
					*errs = append(*errs, path+": "+e.Error())
				}
			} else {
				*errs = append(*errs, path+": "+err.Error())
			}
		}
	}
	findAnys(m.ProtoReflect(), path, errs, count)
}

func findAnys(m protoreflect.Message, path string, errs *[]string, count *int) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i), errs, count)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv.Message(), fmt.Sprintf("%s[%v]", p, k.Interface()), errs, count)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			visit(v.Message(), p, errs, count)
		}
		return true
	})
}

func visit(m protoreflect.Message, path string, errs *[]string, count *int) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			*errs = append(*errs, path+": "+err.Error())
			return
		}
		*count++
		validate(inner, path+"<"+a.GetTypeUrl()+">", errs, count)
		return
	}
	findAnys(m, path, errs, count)
}
