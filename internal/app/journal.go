package app

import (
	"context"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// journalOpenTimeout bounds connecting to the PostgreSQL journal and
// migrating its schema at start.
const journalOpenTimeout = time.Minute

// openJournal opens the configured journal: the embedded one in path, or
// the PostgreSQL journal shared by replicas.
func openJournal(cfg *config.Config, path string) (*store.Store, error) {
	if cfg.Storage.Type == config.StoragePostgres {
		ctx, cancel := context.WithTimeout(context.Background(), journalOpenTimeout)
		defer cancel()
		return store.OpenPostgres(ctx, cfg.Storage.DSN.Reveal())
	}
	return store.Open(path)
}
