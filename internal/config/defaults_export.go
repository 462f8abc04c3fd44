package config

// ApplyDefaults fills every unset field of a configuration built in code
// (not read from a file) with the defaults the loader applies, so that code
// using a Config never needs defaults of its own. An explicit zero cannot be
// told from an absent key here: a zero destructive budget, for one, becomes
// the default.
func ApplyDefaults(c *Config) {
	applyDefaults(c, func(string) bool { return false })
}
