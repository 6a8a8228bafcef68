# libflaghook — build, test, install.
#
#   make            the static and shared libraries and the flaghook command
#   make check      every test (installs missing -dev packages first)
#   make demo       a flag server delivering signed webhooks to a receiver
#   make install    PREFIX=/usr/local DESTDIR= (both honoured)
#   make check SANITIZE=address,undefined   the same tests under sanitizers
#   make check SANITIZE=thread              ... and under ThreadSanitizer
#   make bench      the figures in README's table (about a minute)
#   make fuzz       libFuzzer on the parsers for FUZZ_SECONDS (60)
#   make check-future  the C tests with the wall clock a year ahead
#
# CC, CPPFLAGS, CFLAGS, LDFLAGS, PREFIX, LIBDIR, PKGCONFIGDIR and DESTDIR
# are yours; what the build needs is added to them.

VERSION     := 0.1.0
SOMAJOR     := 0
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CC          ?= cc
CFLAGS      ?= -O2 -g
SANITIZE    ?=

ifeq ($(SANITIZE),)
BUILD       ?= build
else
BUILD       ?= build-$(subst $(comma),-,$(SANITIZE))
SAN_FLAGS   := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
comma := ,

# WERROR= lets a distribution build with a newer compiler go on through
# a new warning; CI and `make check` keep it.
WERROR      ?= -Werror
WARN        := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes
FH_CFLAGS   := -std=c99 -D_GNU_SOURCE $(WARN) -Iinclude -pthread $(SAN_FLAGS) $(CPPFLAGS) $(CFLAGS)
# Release builds drop the library's internal asserts (the JSON writer checks
# key order with one); the sanitizer builds, which CI runs, keep them.
LIB_CFLAGS  := $(FH_CFLAGS) -Isrc -I$(BUILD)/gen -fPIC -fvisibility=hidden $(if $(SANITIZE),,-DNDEBUG)
LIB_LIBS    := -lcurl -lcjson -lmbedx509 -lmbedcrypto -pthread
FH_LDFLAGS  := $(SAN_FLAGS) $(LDFLAGS)

# The library's layers, one folder each (src/README.md): util, payload,
# net, io, client, engine, plugins, ffi.  The command and the store
# libraries are built on their own.
LIB_DIRS    := util payload net io client engine plugins ffi
LIB_SRCS    := $(sort $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c)))
LIB_OBJS    := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
# src/util: helpers the core, the stores, the command and the tests share
# (allocator wrappers, clocks, versioned structs, error formatting).  In
# the core's archive and shared library; the store libraries link this
# archive of them (hidden, never installed).
UTIL_OBJS   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(sort $(wildcard src/util/*.c)))
UTIL_A      := $(BUILD)/libflaghook-util.a
STATIC      := $(BUILD)/libflaghook.a
SHARED_REAL := $(BUILD)/libflaghook.so.$(VERSION)
SHARED_SO   := $(BUILD)/libflaghook.so.$(SOMAJOR)
SHARED      := $(BUILD)/libflaghook.so
CMD         := $(BUILD)/flaghook
STORES      := sqlite pg
STORE_LIBS  := $(foreach s,$(STORES),$(BUILD)/libflaghook-$(s).a $(BUILD)/libflaghook-$(s).so.$(SOMAJOR) $(BUILD)/libflaghook-$(s).so)
STORE_STATIC := $(BUILD)/libflaghook-sqlite.a $(BUILD)/libflaghook-pg.a
STORE_LINK  := $(STORE_STATIC) -lsqlite3 $$(pkg-config --libs libpq)

# Debian packages this project builds and tests with.
DEB_BUILD   := gcc make pkg-config libcurl4-openssl-dev libmbedtls-dev libcjson-dev \
               libsqlite3-dev libpq-dev
DEB_TEST    := libcmocka-dev libmicrohttpd-dev python3 openssl curl binutils g++ man-db \
               postgresql sqlite3 abigail-tools python3-venv python3-pip
DEB_ALL     := $(DEB_BUILD) $(DEB_TEST)

.PHONY: FORCE all lib check demo deps install uninstall installcheck bench fuzz clean examples header-test symbols-test abi-check abi-baseline check-future

all: $(STATIC) $(SHARED) $(STORE_LIBS) $(CMD)
lib: $(STATIC) $(SHARED) $(STORE_LIBS)

# ---- dependencies -------------------------------------------------------
# Installs what is missing when it can (root, or sudo without a password);
# otherwise names the packages to install.
# Node (for the Node package's tests) counts as present when node and npm
# run, whoever installed them; otherwise Debian's nodejs and npm.
deps:
	@missing=""; for p in $(DEB_ALL); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	{ command -v node && command -v npm; } >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "libflaghook: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "libflaghook: please run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	  { echo "libflaghook: apt-get install$$missing failed" >&2; exit 1; }; \
	fi

# ---- the library ----------------------------------------------------------
PUBLIC_HDRS := include/flaghook.h $(wildcard include/flaghook/*.h include/flaghook/sys/*.h)
LIB_HDRS    := $(wildcard src/*.h $(LIB_DIRS:%=src/%/*.h)) $(PUBLIC_HDRS)
GEN         := $(BUILD)/gen

# Every public constant (an object-like FLAGHOOK_* macro whose value is a
# number) for flaghook_constant(): generated, so the table cannot drift.
$(GEN)/constants.inc: $(PUBLIC_HDRS)
	@mkdir -p $(@D)
	sed -nE 's/^#[[:space:]]*define[[:space:]]+(FLAGHOOK_[A-Z0-9_]+)[[:space:]]+[-0-9(].*/FH_CONST(\1)/p' \
	    $(PUBLIC_HDRS) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/ffi/constants.o: $(GEN)/constants.inc
$(BUILD)/obj/%.o: src/%.c $(LIB_HDRS) | $(BUILD)/obj
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj $(BUILD)/tests $(BUILD)/examples:
	@mkdir -p $@

$(STATIC): $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(UTIL_A): $(UTIL_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED_REAL): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libflaghook.so.$(SOMAJOR) -Wl,--no-undefined $(FH_LDFLAGS) -o $@ $^ $(LIB_LIBS)

$(SHARED_SO): $(SHARED_REAL)
	ln -sf libflaghook.so.$(VERSION) $@
$(SHARED): $(SHARED_SO)
	ln -sf libflaghook.so.$(SOMAJOR) $@

# ---- the optional stores: libflaghook-sqlite and libflaghook-pg -------------
# Each is its own small library over the core, so the core needs neither
# SQLite nor libpq.  Their only link to the core is the public API.
STORE_HDRS  := include/flaghook.h include/flaghook_sqlite.h include/flaghook_pg.h $(wildcard src/util/*.h)
SQLITE_LIBS := -lsqlite3 -pthread
PG_LIBS     := $$(pkg-config --libs libpq) -pthread
PG_CFLAGS   := $$(pkg-config --cflags libpq)

$(BUILD)/obj/stores:
	@mkdir -p $@
$(BUILD)/obj/stores/storage_sqlite.o: src/stores/storage_sqlite.c $(wildcard src/stores/*.h) $(STORE_HDRS) | $(BUILD)/obj/stores
	$(CC) $(LIB_CFLAGS) -Isrc -c $< -o $@
$(BUILD)/obj/stores/storage_pg.o: src/stores/storage_pg.c $(wildcard src/stores/*.h) $(STORE_HDRS) | $(BUILD)/obj/stores
	$(CC) $(LIB_CFLAGS) -Isrc $(PG_CFLAGS) -c $< -o $@

$(BUILD)/libflaghook-sqlite.a: $(BUILD)/obj/stores/storage_sqlite.o
	rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/libflaghook-pg.a: $(BUILD)/obj/stores/storage_pg.o
	rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/libflaghook-sqlite.so.$(VERSION): $(BUILD)/obj/stores/storage_sqlite.o $(UTIL_A) $(SHARED)
	$(CC) -shared -Wl,-soname,libflaghook-sqlite.so.$(SOMAJOR) -Wl,--no-undefined $(FH_LDFLAGS) -o $@ $< \
	    $(UTIL_A) -L$(BUILD) -lflaghook $(SQLITE_LIBS)
$(BUILD)/libflaghook-pg.so.$(VERSION): $(BUILD)/obj/stores/storage_pg.o $(UTIL_A) $(SHARED)
	$(CC) -shared -Wl,-soname,libflaghook-pg.so.$(SOMAJOR) -Wl,--no-undefined $(FH_LDFLAGS) -o $@ $< \
	    $(UTIL_A) -L$(BUILD) -lflaghook $(PG_LIBS)
$(BUILD)/libflaghook-%.so.$(SOMAJOR): $(BUILD)/libflaghook-%.so.$(VERSION)
	ln -sf libflaghook-$*.so.$(VERSION) $@
$(BUILD)/libflaghook-%.so: $(BUILD)/libflaghook-%.so.$(SOMAJOR)
	ln -sf libflaghook-$*.so.$(SOMAJOR) $@


# ---- the command ------------------------------------------------------------
$(CMD): $(wildcard src/cmd/*.c src/cmd/*.h) $(STATIC) $(STORE_STATIC) $(STORE_HDRS)
	$(CC) $(FH_CFLAGS) -Isrc/cmd $(filter %.c,$^) -o $@ $(FH_LDFLAGS) $(STORE_LINK) $(STATIC) $(LIB_LIBS)

# ---- examples -------------------------------------------------------------------
EX_FLAGS := $(FH_CFLAGS) $(FH_LDFLAGS)

$(BUILD)/examples/flag_server: examples/flag_server.c $(STATIC) include/flaghook.h | $(BUILD)/examples
	$(CC) $(EX_FLAGS) $< -o $@ $(STATIC) $(LIB_LIBS)
$(BUILD)/examples/receiver: examples/receiver.c $(STATIC) include/flaghook.h | $(BUILD)/examples
	$(CC) $(EX_FLAGS) $$(pkg-config --cflags libmicrohttpd) $< -o $@ $(STATIC) $(LIB_LIBS) $$(pkg-config --libs libmicrohttpd)

$(BUILD)/examples/outbox_server: examples/outbox_server.c $(STATIC) $(BUILD)/libflaghook-sqlite.a $(STORE_HDRS) | $(BUILD)/examples
	$(CC) $(EX_FLAGS) $< -o $@ $(BUILD)/libflaghook-sqlite.a $(STATIC) $(SQLITE_LIBS) $(LIB_LIBS)

$(BUILD)/examples/poll_loop: examples/poll_loop.c $(STATIC) include/flaghook.h | $(BUILD)/examples
	$(CC) $(EX_FLAGS) $< -o $@ $(STATIC) $(LIB_LIBS)

examples: $(BUILD)/examples/flag_server $(BUILD)/examples/receiver $(BUILD)/examples/outbox_server \
          $(BUILD)/examples/poll_loop

demo: deps
	@$(MAKE) --no-print-directory all examples
	@sh examples/demo.sh $(BUILD)

# ---- tests ------------------------------------------------------------------------
VECTORS     ?= $(firstword $(wildcard ../shared/vectors) tests/vectors)
TEST_NAMES  := test_json test_sign test_render test_ffi test_versions test_guard test_ssrf test_tls test_network test_differential test_deliver test_async test_engine_review test_races test_alloc test_cli \
               test_store_memory test_store_engine test_sqlite test_pg test_durable test_crash
TEST_BINS   := $(TEST_NAMES:%=$(BUILD)/tests/%)
TEST_SUPPORT := tests/support/httpd.c tests/support/tick.c tests/support/vectors.c tests/support/sample_events.c tests/support/store_suite.c
TEST_CFLAGS := $(FH_CFLAGS) -Isrc -Itests/support -Isrc/cmd $(PG_CFLAGS)
# The tests link their own copy of the SQLite store, with its test hooks
# compiled in (-DFLAGHOOK_TESTHOOKS); the installed one has none.
SQLITE_TEST_A := $(BUILD)/tests/libflaghook-sqlite-testhooks.a
TEST_LIBS   := $(SQLITE_TEST_A) $(BUILD)/libflaghook-pg.a -lsqlite3 $$(pkg-config --libs libpq) \
               $(STATIC) $(LIB_LIBS) -lcmocka -lcjson -lmbedtls -lmbedx509 -lmbedcrypto -lm

$(BUILD)/tests/storage_sqlite_testhooks.o: src/stores/storage_sqlite.c $(wildcard src/stores/*.h) $(STORE_HDRS) | $(BUILD)/tests
	$(CC) $(LIB_CFLAGS) -Isrc -DFLAGHOOK_TESTHOOKS -c $< -o $@
$(SQLITE_TEST_A): $(BUILD)/tests/storage_sqlite_testhooks.o
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) $(wildcard tests/support/*.h) $(LIB_HDRS) src/cmd/sample.c src/cmd/sample.h $(STATIC) $(STORE_STATIC) $(SQLITE_TEST_A) $(STORE_HDRS) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) $< $(TEST_SUPPORT) src/cmd/sample.c -o $@ $(FH_LDFLAGS) $(TEST_LIBS)

header-test: | $(BUILD)/tests
	@sh tests/header-test.sh $(BUILD) "$(CC)" "$${CXX:-g++}"

# The ABI against the baselines in abi/ (tests/abi-check.sh); at a release,
# `make abi-baseline` takes new ones.
abi-check: $(SHARED_REAL) $(BUILD)/libflaghook-sqlite.so.$(VERSION) $(BUILD)/libflaghook-pg.so.$(VERSION)
	@sh tests/abi-check.sh $(BUILD)
abi-baseline: $(SHARED_REAL) $(BUILD)/libflaghook-sqlite.so.$(VERSION) $(BUILD)/libflaghook-pg.so.$(VERSION)
	@sh tests/abi-check.sh $(BUILD) update

# The shared libraries export the public flaghook_* API and nothing else;
# every global symbol of every installed archive is flaghook_* (API) or
# flaghook__* (internal), so a host that links statically cannot collide
# with us; and no installed library carries a test hook.
SYM_LIBS := $(SHARED_REAL) $(BUILD)/libflaghook-sqlite.so.$(VERSION) $(BUILD)/libflaghook-pg.so.$(VERSION)
SYM_ARCHIVES := $(STATIC) $(STORE_STATIC)
symbols-test: $(SYM_LIBS) $(SYM_ARCHIVES)
	@for lib in $(SYM_LIBS); do \
	  bad=$$(nm -D --defined-only $$lib | awk '{print $$3}' | grep -v '^flaghook_[a-z]' | grep -v '^_' || true); \
	  if [ -n "$$bad" ]; then echo "symbols-test: $$lib exports beyond the flaghook_* API: $$bad"; exit 1; fi; \
	  n=$$(nm -D --defined-only $$lib | grep -c ' T flaghook_'); \
	  echo "symbols-test: $${lib##*/}: $$n functions exported, all flaghook_*"; \
	done
	@for lib in $(SYM_ARCHIVES); do \
	  bad=$$(nm -g --defined-only $$lib | awk 'NF == 3 {print $$3}' | grep -v '^flaghook_' || true); \
	  if [ -n "$$bad" ]; then echo "symbols-test: $$lib defines globals outside flaghook_*/flaghook__*:" $$bad; exit 1; fi; \
	  hooks=$$(nm -g --defined-only $$lib | awk 'NF == 3 {print $$3}' | grep -E 'testhook|_exec$$|__sqlite_(commits|batches)' || true); \
	  if [ -n "$$hooks" ]; then echo "symbols-test: $$lib carries test hooks:" $$hooks; exit 1; fi; \
	  n=$$(nm -g --defined-only $$lib | awk 'NF == 3' | wc -l); \
	  echo "symbols-test: $${lib##*/}: $$n global symbols, all flaghook_* or flaghook__*, no test hook"; \
	done

# The test server's own checks run first: the other tests stand on it.
$(BUILD)/tests/httpd_selftest: tests/support/httpd_selftest.c tests/support/httpd.c tests/support/httpd.h | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) tests/support/httpd_selftest.c tests/support/httpd.c -o $@ $(FH_LDFLAGS) -lmbedtls -lmbedx509 -lmbedcrypto -lcurl

# The fuzz target's corpus, replayed without libFuzzer on every check.
$(BUILD)/tests/fuzz_replay: tests/fuzz/replay.c tests/fuzz/fuzz_inputs.c $(STATIC) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) tests/fuzz/replay.c tests/fuzz/fuzz_inputs.c -o $@ $(FH_LDFLAGS) $(STATIC) $(LIB_LIBS)

check: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/httpd_selftest $(TEST_BINS) $(BUILD)/tests/fuzz_replay \
	    header-test symbols-test abi-check
	@sh tests/man-check.sh
	@sh tests/readme-check.sh $(BUILD) "$(CC) $(SAN_FLAGS)" "$(LIB_LIBS)"
	@sh tests/readme-extract.sh "## Python" python $(BUILD)/tests/readme_example.py
	@sh tests/readme-extract.sh "## Node" js $(BUILD)/tests/node/readme_example.js
	@mkdir -p $(BUILD)/tests/node/node_modules && ln -sfn $(CURDIR)/bindings/node $(BUILD)/tests/node/node_modules/flaghook
	@FLAGHOOK_VECTORS=$(VECTORS) FLAGHOOK_BUILD=$(BUILD) FLAGHOOK_EXAMPLE=$(CURDIR)/$(BUILD)/tests/readme_example.py \
	    FLAGHOOK_NODE_EXAMPLE=$(CURDIR)/$(BUILD)/tests/node/readme_example.js \
	    sh tests/run.sh $(BUILD)/tests/httpd_selftest $(TEST_BINS) $(BUILD)/tests/fuzz_replay \
	    bindings/python/run-tests.sh bindings/node/run-tests.sh

# ---- the same tests a year from now (not part of check) ----------------------
# tests/support/clock_ahead.c moves CLOCK_REALTIME, time() and
# gettimeofday() ahead (FLAGHOOK_CLOCK_AHEAD_S, default 365 days) in every
# test program, the flaghook command and the PostgreSQL server they start;
# monotonic clocks stay.  No test may depend on today's date.
$(BUILD)/tests/clock_ahead.so: tests/support/clock_ahead.c | $(BUILD)/tests
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Werror $< -o $@ -ldl
check-future: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/httpd_selftest $(TEST_BINS) $(BUILD)/tests/clock_ahead.so
	@echo "check-future: the wall clock is $$(LD_PRELOAD=$(CURDIR)/$(BUILD)/tests/clock_ahead.so date -u +%F) in these runs"
	@LD_PRELOAD=$(CURDIR)/$(BUILD)/tests/clock_ahead.so FLAGHOOK_VECTORS=$(VECTORS) FLAGHOOK_BUILD=$(BUILD) \
	    sh tests/run.sh $(BUILD)/tests/httpd_selftest $(TEST_BINS)

# ---- fuzzing (bounded; not part of check) --------------------------------------
# libFuzzer with ASan and UBSan over the library's sources.  New inputs go to
# build-fuzz/corpus; copy the interesting ones into tests/fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
fuzz: deps $(GEN)/constants.inc
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: needs clang (apt-get install clang libclang-rt-dev)"; exit 1; }
	@mkdir -p build-fuzz/corpus
	$(FUZZ_CC) -std=c99 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc -I$(GEN) -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all $(LIB_SRCS) tests/fuzz/fuzz_inputs.c -o build-fuzz/fuzz_inputs $(LIB_LIBS)
	build-fuzz/fuzz_inputs -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus tests/fuzz/corpus

# ---- benchmark (not part of check; installs nginx, wrk, python3-requests) ----
bench: deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/run.sh $(BUILD)

# ---- install --------------------------------------------------------------------
MAN3 := $(wildcard man/man3/*.3)
MAN7 := $(wildcard man/man7/*.7)
MAN1 := $(wildcard man/man1/*.1)

# Written on every install: PREFIX and LIBDIR may differ from the last.
$(BUILD)/%.pc: pkgconfig/%.pc.in FORCE | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

PC_FILES := $(BUILD)/flaghook.pc $(BUILD)/flaghook-sqlite.pc $(BUILD)/flaghook-pg.pc

install: all $(PC_FILES)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -d $(DESTDIR)$(INCLUDEDIR)/flaghook/sys
	install -m 644 include/flaghook.h include/flaghook_sqlite.h include/flaghook_pg.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(wildcard include/flaghook/*.h) $(DESTDIR)$(INCLUDEDIR)/flaghook/
	install -m 644 $(wildcard include/flaghook/sys/*.h) $(DESTDIR)$(INCLUDEDIR)/flaghook/sys/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libflaghook.a
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/libflaghook.so.$(VERSION)
	ln -sf libflaghook.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libflaghook.so.$(SOMAJOR)
	ln -sf libflaghook.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libflaghook.so
	for s in $(STORES); do \
	  install -m 644 $(BUILD)/libflaghook-$$s.a $(DESTDIR)$(LIBDIR)/ && \
	  install -m 755 $(BUILD)/libflaghook-$$s.so.$(VERSION) $(DESTDIR)$(LIBDIR)/ && \
	  ln -sf libflaghook-$$s.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libflaghook-$$s.so.$(SOMAJOR) && \
	  ln -sf libflaghook-$$s.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libflaghook-$$s.so || exit 1; \
	done
	install -m 644 $(PC_FILES) $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 755 $(CMD) $(DESTDIR)$(BINDIR)/flaghook
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/

installcheck: all
	@sh tests/install-check.sh $(BUILD)

uninstall:
	for s in $(STORES); do \
	  rm -f $(DESTDIR)$(LIBDIR)/libflaghook-$$s.a $(DESTDIR)$(LIBDIR)/libflaghook-$$s.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/libflaghook-$$s.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libflaghook-$$s.so \
	    $(DESTDIR)$(PKGCONFIGDIR)/flaghook-$$s.pc; \
	done
	rm -f $(DESTDIR)$(INCLUDEDIR)/flaghook_sqlite.h $(DESTDIR)$(INCLUDEDIR)/flaghook_pg.h
	rm -f $(patsubst include/%,$(DESTDIR)$(INCLUDEDIR)/%,$(wildcard include/flaghook/*.h include/flaghook/sys/*.h))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/flaghook/sys $(DESTDIR)$(INCLUDEDIR)/flaghook 2>/dev/null
	rm -f $(DESTDIR)$(INCLUDEDIR)/flaghook.h $(DESTDIR)$(LIBDIR)/libflaghook.a \
	    $(DESTDIR)$(LIBDIR)/libflaghook.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libflaghook.so.$(SOMAJOR) \
	    $(DESTDIR)$(LIBDIR)/libflaghook.so $(DESTDIR)$(PKGCONFIGDIR)/flaghook.pc $(DESTDIR)$(BINDIR)/flaghook
	rm -f $(MAN1:man/%=$(DESTDIR)$(MANDIR)/%) $(MAN3:man/%=$(DESTDIR)$(MANDIR)/%) $(MAN7:man/%=$(DESTDIR)$(MANDIR)/%)

FORCE:

clean:
	rm -rf build build-*
