package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// mosaic login and logout: a hub API token for the CLI through the
// device authorization grant, kept in the user's credentials file.

// loginHTTPClient is the client of login and logout (tests replace it
// for hubs with their own certificates).
var loginHTTPClient = &http.Client{Timeout: 30 * time.Second}

func newLoginCmd(e *env) *cobra.Command {
	var hubURL string
	cmd := &cobra.Command{
		Use:   "login --hub URL",
		Short: "Get an API token for the command line: approve a code in the hub's web pages",
		Long: `Asks the hub for a code, prints the address to open and the code, and waits
while you approve it in a browser where you are logged in to the hub (with
a hub account or your institution's login). The token is stored in
$XDG_CONFIG_HOME/mosaic/credentials.json (or ~/.config/mosaic/...), readable
only by you.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hubURL == "" {
				return usagef("mosaic login: --hub URL is required")
			}
			key, err := oidc.HubKey(hubURL)
			if err != nil {
				return usageError{err}
			}
			creds, err := oidc.CredentialsFile(e.getenv)
			if err != nil {
				return err
			}
			tok, err := oidc.DeviceLogin(cmd.Context(), loginHTTPClient, key, func(d oidc.DeviceAuthorization) {
				fmt.Fprintf(e.stdout, "To log in, open %s\nand enter the code %s\n(or open %s)\nWaiting for approval...\n",
					d.VerificationURI, d.UserCode, d.VerificationURIComplete)
			})
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			if err := creds.Save(key, tok); err != nil {
				return fmt.Errorf("login: storing the token: %w", err)
			}
			fmt.Fprintf(e.stdout, "Logged in to %s; the token is in %s\n", key, creds.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&hubURL, "hub", "", "the hub's URL (required)")
	return cmd
}

func newLogoutCmd(e *env) *cobra.Command {
	var hubURL string
	cmd := &cobra.Command{
		Use:   "logout --hub URL",
		Short: "Forget the command line's token for a hub, and revoke it at the hub",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hubURL == "" {
				return usagef("mosaic logout: --hub URL is required")
			}
			key, err := oidc.HubKey(hubURL)
			if err != nil {
				return usageError{err}
			}
			creds, err := oidc.CredentialsFile(e.getenv)
			if err != nil {
				return err
			}
			tok, err := creds.Remove(key)
			if err != nil {
				return err
			}
			if tok == "" {
				fmt.Fprintf(e.stdout, "No token stored for %s\n", key)
				return nil
			}
			if err := oidc.RevokeToken(cmd.Context(), loginHTTPClient, key, tok); err != nil {
				fmt.Fprintf(e.stderr, "mosaic: the token was forgotten here but not revoked at the hub (%v): revoke it there if it may have leaked\n", err)
			}
			fmt.Fprintf(e.stdout, "Logged out of %s\n", key)
			return nil
		},
	}
	cmd.Flags().StringVar(&hubURL, "hub", "", "the hub's URL (required)")
	return cmd
}

// oidcFlags are hub serve's flags for an OpenID provider; the claim
// mapping lives in hub.json (docs/oidc.md).
type oidcFlags struct {
	issuer, clientID, name string
	noLocal                bool
}

func (f *oidcFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.issuer, "oidc-issuer", "", "issuer URL of an OpenID provider people log in with (env MOSAIC_HUB_OIDC_ISSUER; see docs/oidc.md)")
	fs.StringVar(&f.clientID, "oidc-client-id", "", "the hub's client id at the provider (env MOSAIC_HUB_OIDC_CLIENT_ID; the secret only in env MOSAIC_HUB_OIDC_CLIENT_SECRET or hub.json)")
	fs.StringVar(&f.name, "oidc-name", "", "the provider's name on the login page, e.g. \"Life Science Login\"")
	fs.BoolVar(&f.noLocal, "no-local-login", false, "refuse passwords of hub accounts (log-in through the provider only; API tokens keep working)")
}

// apply sets the OpenID configuration from the environment and flags,
// over hub.json.
func (f *oidcFlags) apply(e *env, fs *pflag.FlagSet, c *hub.Config) {
	for _, v := range []struct {
		dst       *string
		env, flag string
	}{
		{&c.OIDC.Issuer, "MOSAIC_HUB_OIDC_ISSUER", f.issuer}, {&c.OIDC.ClientID, "MOSAIC_HUB_OIDC_CLIENT_ID", f.clientID},
		{&c.OIDC.ClientSecret, "MOSAIC_HUB_OIDC_CLIENT_SECRET", ""}, {&c.OIDC.Name, "", f.name},
	} {
		if v.env != "" {
			if s := e.getenv(v.env); s != "" {
				*v.dst = s
			}
		}
		if v.flag != "" {
			*v.dst = v.flag
		}
	}
	if fs != nil && fs.Changed("no-local-login") {
		c.NoLocalLogin = f.noLocal
	}
}
