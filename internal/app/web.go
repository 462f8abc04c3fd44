package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/exporter-toolkit/web"
)

// ValidateWebConfig reads the web configuration file (exporter-toolkit's
// format: tls_server_config, http_server_config, basic_auth_users) and the
// certificates and keys it names, and says what is wrong with them. An
// empty path means plain HTTP and is valid.
func ValidateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("web config file %s: %w", path, err)
	}
	return nil
}

// serveHTTP serves the API on the listener until Shutdown: plain HTTP
// without a web configuration file, else as the file says (TLS, client
// certificates, HTTP/2, bcrypt basic-auth users), through exporter-toolkit
// as every Prometheus component does. The file's basic-auth users come
// before drguard's own credentials: where both are configured, a request
// must pass both. The certificates are read again for each new connection,
// so a renewed certificate needs no restart.
func (a *App) serveHTTP(context.Context) error {
	path := a.webConfig
	err := web.Serve(a.listener, a.http, &web.FlagConfig{WebConfigFile: &path}, a.log.With("component", "http"))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
