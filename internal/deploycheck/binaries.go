package deploycheck

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"strings"
)

// CheckStatic checks a binary is what the image's distroless static base
// can run: an ELF with no interpreter and no shared libraries, built with
// CGO_ENABLED=0, -trimpath and stripped (-ldflags "-s -w"), as `make
// static-binaries` builds it. It reads the file only: no binutils needed.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	var problems []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			problems = append(problems, "dynamically linked ("+p.Type.String()+")")
			break
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		problems = append(problems, fmt.Sprintf("reading its libraries: %v", err))
	} else if len(libs) > 0 {
		problems = append(problems, fmt.Sprintf("needs shared libraries %v", libs))
	}
	if f.Section(".symtab") != nil {
		problems = append(problems, "not stripped (a .symtab section: -ldflags lacks -s)")
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: build info: %w", path, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		problems = append(problems, fmt.Sprintf("CGO_ENABLED=%q, want 0", settings["CGO_ENABLED"]))
	}
	if settings["-trimpath"] != "true" {
		problems = append(problems, "not built with -trimpath")
	}
	// Go leaves -ldflags out of the build info under -trimpath (they may
	// hold paths): -s and -w show as the missing symbol and DWARF tables.
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			problems = append(problems, "carries DWARF ("+s.Name+": -ldflags lacks -w)")
			break
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: not a static release binary: %s", path, strings.Join(problems, "; "))
	}
	return nil
}
