package main

import (
	"fmt"
	"io"

	"github.com/dashsync/dashsync/api"
)

// token prints a token for the configured user on stdout, and nothing else.
func token(c tokenConfig, stdout io.Writer) error {
	secret, _, err := jwtSecret(c.JWTSecret, c.Dev, c.DataDir)
	if err != nil {
		return err
	}
	tok, err := api.MintToken(secret, c.User, c.TTL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
