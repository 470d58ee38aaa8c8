package daemon

import "context"

// recoverAsIfRestarted drops this process's claims without removing
// their lock files (as if the process had died), then recovers as a new
// daemon would. The test's domIDByName answers for the model.
func (k *Keeper) recoverAsIfRestarted(ctx context.Context) []Recovered {
	k.owners.mu.Lock()
	for name, c := range k.owners.held {
		c.f.Close()
		delete(k.owners.held, name)
	}
	k.owners.mu.Unlock()
	return k.Recover(ctx)
}
