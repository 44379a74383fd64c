package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// accessFlags are hub serve's flags for access requests: the mail server
// of notifications, reminders and escalation, the longest permit, and how
// often the nodes get the list of revoked permits (docs/access.md).
type accessFlags struct {
	smtpAddr, smtpFrom, smtpUser, smtpPasswordFile, smtpTLS string
	remindAfter, escalateAfter, revocationInterval          time.Duration
	maxPermitDays                                           int
}

func (f *accessFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.smtpAddr, "smtp-addr", "", "host:port of the mail server that sends access-request notifications (env MOSAIC_HUB_SMTP_ADDR; default: notifications in the web pages only)")
	fs.StringVar(&f.smtpFrom, "smtp-from", "", "sender address of the notifications (env MOSAIC_HUB_SMTP_FROM)")
	fs.StringVar(&f.smtpUser, "smtp-user", "", "user name at the mail server (env MOSAIC_HUB_SMTP_USER)")
	fs.StringVar(&f.smtpPasswordFile, "smtp-password-file", "", "file holding the mail server's password (env MOSAIC_HUB_SMTP_PASSWORD_FILE)")
	fs.StringVar(&f.smtpTLS, "smtp-tls", "", "TLS to the mail server: starttls (default), required, implicit (port 465) or insecure (env MOSAIC_HUB_SMTP_TLS)")
	fs.DurationVar(&f.remindAfter, "remind-after", 0, "remind representatives who have not answered an access request for this long (default 72h)")
	fs.DurationVar(&f.escalateAfter, "escalate-after", 0, "tell the hub's admins of a request no representative answered for this long (default 168h)")
	fs.IntVar(&f.maxPermitDays, "max-permit-days", 0, "the longest a permit may last, in days (default 365)")
	fs.DurationVar(&f.revocationInterval, "revocation-interval", 0, "how often every linked node gets the full list of revoked permits (default 15s; 100ms to 1h)")
}

// smtpTLSModes are the values --smtp-tls accepts ("" is the default).
var smtpTLSModes = map[string]bool{"": true, "starttls": true, "required": true, "implicit": true, "insecure": true}

// apply sets the access and SMTP configuration from the environment and
// flags, over hub.json; a bad value is a usage error.
func (f *accessFlags) apply(e *env, fs *pflag.FlagSet, c *hub.Config) error {
	for _, v := range []struct {
		dst       *string
		env, flag string
	}{
		{&c.SMTP.Addr, "MOSAIC_HUB_SMTP_ADDR", f.smtpAddr}, {&c.SMTP.From, "MOSAIC_HUB_SMTP_FROM", f.smtpFrom},
		{&c.SMTP.User, "MOSAIC_HUB_SMTP_USER", f.smtpUser}, {&c.SMTP.PasswordFile, "MOSAIC_HUB_SMTP_PASSWORD_FILE", f.smtpPasswordFile},
		{&c.SMTP.TLS, "MOSAIC_HUB_SMTP_TLS", f.smtpTLS},
	} {
		if s := e.getenv(v.env); s != "" {
			*v.dst = s
		}
		if v.flag != "" {
			*v.dst = v.flag
		}
	}
	if !smtpTLSModes[c.SMTP.TLS] {
		return usagef("hub: --smtp-tls %q: use starttls, required, implicit or insecure", c.SMTP.TLS)
	}
	changed := func(name string) bool { return fs != nil && fs.Changed(name) }
	for _, v := range []struct {
		dst  *time.Duration
		flag string
		val  time.Duration
	}{{&c.Access.RemindAfter, "remind-after", f.remindAfter}, {&c.Access.EscalateAfter, "escalate-after", f.escalateAfter},
		{&c.RevocationInterval, "revocation-interval", f.revocationInterval}} {
		if !changed(v.flag) {
			continue
		}
		if v.val <= 0 {
			return usagef("hub: --%s %s: must be positive", v.flag, v.val)
		}
		*v.dst = v.val
	}
	if changed("max-permit-days") {
		if f.maxPermitDays < 1 {
			return usagef("hub: --max-permit-days %d: must be at least 1", f.maxPermitDays)
		}
		c.Access.MaxDays = f.maxPermitDays
	}
	if c.SMTP.Addr != "" && c.SMTP.From == "" {
		return usagef("hub: --smtp-addr needs --smtp-from, the sender address")
	}
	return nil
}
