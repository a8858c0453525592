# tego: PGXS build plus the project's two commands (make run, make test).

EXTENSION   = tego
MODULE_big  = tego
OBJS        = src/tego.o src/spi_util.o src/events.o src/registry.o \
              src/shmem.o src/jobs.o src/cron.o src/scheduler.o src/job_runner.o \
              src/apps.o src/mirror.o src/leader.o
DATA        = $(wildcard sql/tego--*.sql)
PGFILEDESC  = "tego - control plane for multi-process application platforms"

REGRESS      = registry events errors privileges cron jobs leases operations apps mirror adoption upgrade
REGRESS_OPTS = --inputdir=. --load-extension=tego

PG_CONFIG ?= $(shell command -v pg_config >/dev/null 2>&1 && pg_config --version | grep -q ' 15\.' && echo pg_config || echo /usr/lib/postgresql/15/bin/pg_config)
PG_CFLAGS  = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
PG_CPPFLAGS = -I$(srcdir)/src

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object is rebuilt when a header of ours changes
$(OBJS): $(wildcard src/*.h)
# bitcode for the JIT too
$(OBJS:.o=.bc): $(wildcard src/*.h)

LIBPQ_CFLAGS = -I$(shell $(PG_CONFIG) --includedir)
LIBPQ_LIBS   = -L$(shell $(PG_CONFIG) --libdir) -lpq

TOOLS = test/tools/tego_listen test/tools/tego_latency

test/tools/%: test/tools/%.c test/tools/tego_json.h
	$(CC) -O2 -Wall -Wextra -Werror $(LIBPQ_CFLAGS) -o $@ $< $(LIBPQ_LIBS) -lm

tools: $(TOOLS)

# The tego command-line tool (C on libpq), installed beside the server's
# programs: $(bindir)/tego.
CLI_SRCS = $(wildcard src/cli/*.c)
ifneq ($(CLI_SRCS),)
CLI = src/cli/tego

all: $(CLI)

$(CLI): $(CLI_SRCS) $(wildcard src/cli/*.h)
	$(CC) -O2 -g -Wall -Wextra -Werror $(LIBPQ_CFLAGS) -o $@ $(CLI_SRCS) $(LIBPQ_LIBS)

install: install-cli
install-cli: $(CLI)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(CLI) '$(DESTDIR)$(bindir)/tego'

uninstall: uninstall-cli
uninstall-cli:
	rm -f '$(DESTDIR)$(bindir)/tego'
endif

.PHONY: run test bench tools install-cli uninstall-cli

run:
	bash test/scripts/run.sh

test:
	bash test/scripts/test.sh

bench:
	bash test/scripts/bench.sh

EXTRA_CLEAN = $(TOOLS) src/cli/tego results regression.diffs regression.out
