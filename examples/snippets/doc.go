// Package snippets holds the compiled and tested code that the user guide (docs/user_guide)
// quotes besides the example programs; it has no API of its own.
package snippets
