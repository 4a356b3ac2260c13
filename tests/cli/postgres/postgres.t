# The CLI against PostgreSQL. Needs a server: run as
#   scripts/with-postgres.sh tests/cli/run.sh BUILD_DIR tests/cli/postgres/*.t
# The database may be shared with other tests, so names carry a random suffix.

$ test -n "${KILN_TEST_POSTGRES:-}" && echo ok || echo "KILN_TEST_POSTGRES is not set: run under scripts/with-postgres.sh"
ok

$ S=$RANDOM$RANDOM; export KILN_STORE=$KILN_TEST_POSTGRES

$ kiln experiments list
kiln: $KILN_STORE: a postgresql store needs a folder for artifacts and objects: pass --objects DIR or set $KILN_OBJECTS
[exit 2]

$ export KILN_OBJECTS=$PWD/shared

$ kiln experiments create pg-$S
Created experiment 'pg-[0-9]+' with id [0-9]+ (re)

$ kiln experiments create pg-$S
kiln: * (glob)
[exit 4]

$ A=$(kiln runs create --experiment pg-$S --name a) && B=$(kiln runs create --experiment pg-$S --name b)
$ kiln runs log $A --metric rmse=0.5 --param lr=0.1 > /dev/null && kiln runs log $B --metric rmse=0.4 --param lr=0.2 > /dev/null

$ kiln runs search "metrics.rmse < 0.45" --experiment pg-$S
RUN ID                            NAME  EXPERIMENT  STATUS   STARTED              DURATION  metrics.rmse
[0-9a-f]{32}  b     [0-9]+ +RUNNING  [0-9: -]{19}            0.4 (re)

$ kiln runs show 0123456789abcdef0123456789abcdef
kiln: Run with id=0123456789abcdef0123456789abcdef not found
[exit 3]

# A server on the same database gives the same answers; the password never shows.
$ start_server && head -1 .server.log
kiln server listening on http://127.0.0.1:* (store: postgresql://*) (glob)
$ diff <(kiln runs compare $A $B) <(kiln --store $KILN_URL runs compare $A $B) && echo same
same
$ stop_server
kiln server stopped
