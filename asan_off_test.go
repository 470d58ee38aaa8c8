//go:build !asan

package goxl

const asanBuild = false
