# kiln init and how commands find their store.

$ kiln experiments list
kiln: no kiln store found: run `kiln init` or pass --store
[exit 1]

$ kiln init
Initialized kiln store in */project/.kiln (glob)
  kiln.db     metadata database (SQLite, schema version *) (glob)
  artifacts/  run artifacts
  objects/    data objects

$ ls .kiln
artifacts
kiln.db
...
objects

# Idempotent.
$ kiln init
kiln store already initialized in */project/.kiln (schema version *) (glob)

$ kiln init --json
{
  "created": false,
  "database": "sqlite://*/project/.kiln/kiln.db", (glob)
  "path": "*/project/.kiln", (glob)
  "schema_version": [0-9]+ (re)
}

# The store is found from any folder below the project.
$ mkdir -p src/deep && (cd src/deep && kiln experiments list)
ID  NAME     LIFECYCLE  CREATED              ARTIFACT LOCATION
0   Default  active     * (glob)

# A DIR argument, then --store and $KILN_STORE pointing at it.
$ kiln init other
Initialized kiln store in */project/other/.kiln (glob)
...

$ kiln --store other experiments create only-in-other
Created experiment 'only-in-other' with id 1

$ KILN_STORE=$PWD/other/.kiln/kiln.db kiln experiments list
ID  NAME           LIFECYCLE  CREATED              ARTIFACT LOCATION
1   only-in-other  active     * (glob)
0   Default        active     * (glob)

$ kiln experiments show only-in-other --store sqlite://$PWD/other/.kiln/kiln.db
experiment_id      1
...

$ kiln experiments show only-in-other
kiln: no experiment with id or name 'only-in-other'
[exit 3]

$ kiln --store ftp://example.com/x experiments list
kiln: store 'ftp://example.com/x': unsupported scheme 'ftp' (use a path, sqlite://, postgresql:// or http://)
[exit 2]

$ kiln --store postgresql://kiln:hunter2@127.0.0.1:1/kiln experiments list
kiln: a postgresql store needs a folder for artifacts and objects: pass --objects DIR or set $KILN_OBJECTS
[exit 2]

# A server that is not there.
$ kiln --store http://127.0.0.1:1 experiments list
kiln: cannot reach kiln server at http://127.0.0.1:1: * (glob)
[exit 1]
