package backup

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConninfo(t *testing.T) {
	cases := []struct {
		in   string
		want conninfo
	}{
		{"postgres://u:p%40ss@db.example:5433/app?sslmode=require&connect_timeout=5",
			conninfo{"user": "u", "password": "p@ss", "host": "db.example", "port": "5433", "dbname": "app", "sslmode": "require", "connect_timeout": "5"}},
		{"postgresql://h1:5432,h2:5433/app", conninfo{"host": "h1,h2", "port": "5432,5433", "dbname": "app"}},
		{"postgres://[::1]:5432/x", conninfo{"host": "::1", "port": "5432", "dbname": "x"}},
		{"postgres:///app?host=/var/run/postgresql", conninfo{"dbname": "app", "host": "/var/run/postgresql"}},
		{`host=h port=5432 dbname=app user=u password='a b\'c' sslmode=disable`,
			conninfo{"host": "h", "port": "5432", "dbname": "app", "user": "u", "password": "a b'c", "sslmode": "disable"}},
		{"host = h dbname=x", conninfo{"host": "h", "dbname": "x"}},
	}
	for _, c := range cases {
		got, err := parseConninfo(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseConninfo(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		again, err := parseConninfo(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("String() of %q does not parse back: %q → %v, %v", c.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"password='unterminated", "just words"} {
		_, err := parseConninfo(bad)
		if err == nil || strings.Contains(err.Error(), "unterminated'") || strings.Contains(err.Error(), "words") {
			t.Errorf("parseConninfo(%q) = %v", bad, err)
		}
	}
}

func TestConninfoKeepsThePasswordOffTheCommandLine(t *testing.T) {
	c, _ := parseConninfo("postgres://drguard:s3cret-pw@db:5432/app")
	dsn, env := c.command()
	if strings.Contains(dsn, "s3cret") || len(env) != 1 || env[0] != "PGPASSWORD=s3cret-pw" {
		t.Errorf("command() = %q, %v", dsn, env)
	}
	if got := c.redact(`FATAL: password "s3cret-pw" rejected for postgres://drguard:s3cret-pw@db`); strings.Contains(got, "s3cret") {
		t.Errorf("redact left the password: %s", got)
	}
	if d := c.with("dbname", "scratch").describe(); d != "db:5432/scratch" {
		t.Errorf("describe() = %q", d)
	}
}
