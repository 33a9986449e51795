package db

// PurgeBatch is how many rows one purge statement deletes, for the test of
// a backlog bigger than that.
const PurgeBatch = purgeBatch
