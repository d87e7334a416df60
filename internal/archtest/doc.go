// Package archtest holds the test that keeps lifeguard's import graph as
// designed (STYLE rule 16). It has no code of its own.
package archtest
