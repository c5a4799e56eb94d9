// Package main is a tiny program TestCheckStatic builds with and without
// the release flags. It resolves a name so that a cgo build links libc.
package main

import (
	"fmt"
	"net"
)

func main() { fmt.Println(net.LookupHost("localhost")) }
