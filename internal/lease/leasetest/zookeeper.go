package leasetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/neonmeter/neonmeter/internal/chtest"
	"github.com/neonmeter/neonmeter/internal/lease/zkstore"
)

// The test ensemble is the ZooKeeper scripts/cluster.sh starts (`make test` sets the variable).
const (
	EnvZooKeeperAddrs = "NEONMETER_TEST_ZOOKEEPER_ADDRS"
	// zkTestRoot holds every test's own root; a passing test deletes its own.
	zkTestRoot = "/neonmeter_test"
	// ZooKeeperSession is the session timeout tests use: within any tickTime's bounds.
	ZooKeeperSession = 4 * time.Second
)

// ZooKeeperAddrs returns the test ensemble's addresses. Without them the test is skipped,
// except in CI (CI=true), where a missing service fails it like any other.
func ZooKeeperAddrs(t testing.TB) []string {
	t.Helper()
	list := chtest.NeedEnv(t, EnvZooKeeperAddrs, "leasetest: ZooKeeper is required: set "+EnvZooKeeperAddrs+" (scripts/cluster.sh start; `make test` sets it)")
	return strings.Split(list, ",")
}

// ZooKeeperRoot returns the ensemble and a root znode of the test's own (not yet created),
// deleted with everything under it when the test passes and kept, named, when it fails. The
// test holds the test cluster's lock until it ends (chtest.LockCluster): the cluster's tests
// kill and restart this same ZooKeeper. Call it once per test (a second lock would wait for
// the first).
func ZooKeeperRoot(t testing.TB) (addrs []string, root string) {
	t.Helper()
	addrs = ZooKeeperAddrs(t)
	chtest.LockCluster(t)
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	root = zkTestRoot + "/" + name[:min(len(name), 60)] + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("leasetest: keeping %s on ZooKeeper %s for inspection", root, strings.Join(addrs, ","))
			return
		}
		if err := deleteTree(addrs, root); err != nil {
			t.Errorf("leasetest: delete %s: %v", root, err)
		}
	})
	return addrs, root
}

// ZooKeeper opens the ZooKeeper backend for database db on a root of the test's own, closed
// when the test ends. It fails the test when the ensemble does not answer.
func ZooKeeper(t testing.TB, db string) *zkstore.Store {
	t.Helper()
	addrs, root := ZooKeeperRoot(t)
	s, err := zkstore.Open(zkstore.Options{Addrs: addrs, Root: root, Database: db, SessionTimeout: ZooKeeperSession})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("leasetest: ZooKeeper does not answer: %v\nstart it with scripts/cluster.sh start (or point %s at an ensemble)", err, EnvZooKeeperAddrs)
	}
	return s
}

// deleteTree deletes root and everything under it.
func deleteTree(addrs []string, root string) error {
	conn, _, err := zk.Connect(addrs, ZooKeeperSession, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		return err
	}
	defer conn.Close()
	var del func(p string) error
	del = func(p string) error {
		kids, _, err := conn.Children(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := del(p + "/" + k); err != nil {
				return err
			}
		}
		if err := conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		return nil
	}
	return del(root)
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
