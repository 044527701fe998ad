# keywarden - credential and session broker
#
#   make            build everything into build/
#   make check      install missing dependencies, build, run every test suite
#                   (plain build, then once more with ASan+UBSan)
#   make run        start a broker in the foreground under ./var
#   make bench      measure the broker against a baseline in the same run
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS
#   make install    PREFIX=/usr/local DESTDIR= (see contrib/install.sh)
#   make uninstall  remove exactly what make install added (its manifest)

VERSION    := 0.1.0
PREFIX     ?= /usr/local
DESTDIR    ?=
PKG_CONFIG ?= pkg-config
BUILD      ?= build
SANITIZE   ?= 0
V          ?= 0
FUZZ_SECONDS ?= 30
PYTEST     ?= /usr/bin/python3 -m pytest

BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
# systemd looks in /usr/local/lib/systemd/{system,user} as well as under /usr.
SYSTEMDUNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
BASHCOMPDIR ?= $(or $(shell $(PKG_CONFIG) --variable=completionsdir bash-completion \
	2>/dev/null),/usr/share/bash-completion/completions)
LDCONFIG   ?= ldconfig

# The directory Linux-PAM loads a module named without a path from: libpam's
# libdir + /security (pkg-config), else the multiarch one, whichever holds
# pam_unix.so here (/lib/x86_64-linux-gnu/security on Debian).  PAMDIR
# defaults to it; with another PAMDIR the installed PAM service names the
# module by its full path.
PAM_MODULEDIR := $(shell \
	pc=$$($(PKG_CONFIG) --variable=libdir pam 2>/dev/null); \
	ma=$$($(CC) -print-multiarch 2>/dev/null); \
	for d in $${pc:+$$pc/security} $${ma:+/lib/$$ma/security /usr/lib/$$ma/security} \
		/lib64/security /usr/lib64/security /lib/security /usr/lib/security; do \
		if [ -e "$$d/pam_unix.so" ]; then echo "$$d"; exit 0; fi; \
	done; echo "$${pc:+$$pc/security}")
PAMDIR     ?= $(or $(PAM_MODULEDIR),$(LIBDIR)/security)

# Libraries each program links (pkg-config names); the CLI does not link
# curl, libsecret or p11-kit, and libkeywarden links only what the client needs.
# PCRE2 is the detection engine's (policy/detect), in the broker and the CLI.
CLIENT_PKGS := jansson libsodium libkeyutils
BROKER_PKGS := $(CLIENT_PKGS) sqlite3 liboath libcrypto p11-kit-1 libcurl libsecret-1 zlib \
	libpcre2-8
# libseccomp is the sandbox's (sandbox/, keywarden run): the CLI only.
CLI_PKGS    := $(CLIENT_PKGS) libqrencode pam zlib libpcre2-8 libseccomp
PAM_PKGS    := $(CLIENT_PKGS) pam
# The API proxy (proxy/, keywarden-proxy): libmicrohttpd serves Claude Code,
# libcurl (OpenSSL) forwards upstream.
PROXY_PKGS  := $(CLIENT_PKGS) libmicrohttpd libcurl libcrypto libssl
TEST_PKGS   := $(BROKER_PKGS) cmocka libseccomp libmicrohttpd
ALL_PKGS    := $(sort $(BROKER_PKGS) $(CLI_PKGS) $(PROXY_PKGS) $(TEST_PKGS))

# The Debian package that brings each library's .pc file (contrib/deps.sh installs them).
DEB_jansson := libjansson-dev
DEB_libsodium := libsodium-dev
DEB_libkeyutils := libkeyutils-dev
DEB_sqlite3 := libsqlite3-dev
DEB_liboath := liboath-dev
DEB_libcrypto := libssl-dev
DEB_libssl := libssl-dev
DEB_p11-kit-1 := libp11-kit-dev
DEB_libcurl := libcurl4-openssl-dev
DEB_libsecret-1 := libsecret-1-dev
DEB_zlib := zlib1g-dev
DEB_libqrencode := libqrencode-dev
DEB_pam := libpam0g-dev
DEB_cmocka := libcmocka-dev
DEB_libpcre2-8 := libpcre2-dev
DEB_libseccomp := libseccomp-dev
DEB_libmicrohttpd := libmicrohttpd-dev

# A missing -dev package stops the build here, named, instead of failing later
# with "jansson.h: No such file".  Goals that install dependencies first skip it.
NO_PKG_CHECK_GOALS := deps check run bench fuzz clean layers uninstall
ifneq ($(filter-out $(NO_PKG_CHECK_GOALS),$(or $(MAKECMDGOALS),all)),)
MISSING_PKGS := $(strip $(foreach p,$(ALL_PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING_PKGS),)
$(error missing libraries: $(MISSING_PKGS); install $(foreach p,$(MISSING_PKGS),$(DEB_$(p))) (or run contrib/deps.sh))
endif
endif

pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
# -lm: the detection engine's entropy (log2).
pkg_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null) -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

CC ?= cc
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -fPIC -pipe -MMD -MP \
	-Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes \
	-Wstrict-prototypes -Wno-unused-parameter -Werror=implicit-function-declaration \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 \
	-DKW_VERSION=\"$(VERSION)\" -DKW_LIBDIR=\"$(LIBDIR)\" \
	-I. $(call pkg_cflags,$(ALL_PKGS))
override LDFLAGS += -Wl,-z,relro,-z,now

ifeq ($(SANITIZE),1)
override CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) -O1 \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
endif

# Sources by folder: a new file joins its program by being there.
COMMON_SRC   := $(sort $(wildcard common/*.c))
RBAC_SRC     := $(sort $(wildcard rbac/*.c))
POLICY_SRC   := $(sort $(wildcard policy/*.c policy/*/*.c))
SANDBOX_SRC  := $(sort $(wildcard sandbox/*.c))
CLIENT_SRC   := $(sort $(wildcard client/*.c))
KEYSTORE_SRC := $(sort $(wildcard keystore/*.c keystore/*/*.c))
# broker/main.c wires the folders together; the rest is the broker library.
BROKER_SRC   := $(sort $(wildcard broker/*/*.c)) broker/features.c broker/reload.c
CLI_SRC      := $(sort $(wildcard cli/*.c))
PAM_SRC      := $(sort $(wildcard pam_module/*.c))
PROXY_SRC    := $(sort $(wildcard proxy/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ   := $(call obj,$(COMMON_SRC))
RBAC_OBJ     := $(call obj,$(RBAC_SRC))
POLICY_OBJ   := $(call obj,$(POLICY_SRC))
SANDBOX_OBJ  := $(call obj,$(SANDBOX_SRC))
CLIENT_OBJ   := $(call obj,$(CLIENT_SRC))
KEYSTORE_OBJ := $(call obj,$(KEYSTORE_SRC))
BROKER_OBJ   := $(call obj,$(BROKER_SRC))
CLI_OBJ      := $(call obj,$(CLI_SRC))
PAM_OBJ      := $(call obj,$(PAM_SRC))
PROXY_OBJ    := $(call obj,$(PROXY_SRC))
# libkeywarden is the client plus the error names it returns.
LIBKW_OBJ    := $(CLIENT_OBJ) $(call obj,common/errors.c)
# The PAM module adds the escaper for what it shows the user.
PAM_LINK_OBJ := $(PAM_OBJ) $(LIBKW_OBJ) $(call obj,common/escape.c)

# Static archives: a program (or unit test) pulls in only the objects it uses.
LIB_COMMON   := $(BUILD)/lib/libkwcommon.a
LIB_BROKER   := $(BUILD)/lib/libkwbroker.a

# Unit tests sit beside what they test: tests/unit/FOLDER/test_NAME.c.
UNIT_SRC   := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_TESTS := $(notdir $(basename $(UNIT_SRC)))
UNIT_BIN   := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
UNIT_SUPPORT_OBJ := $(call obj,$(wildcard tests/unit/support/*.c))
UNIT_OBJ   := $(call obj,$(UNIT_SRC))
# Kept after linking (no rebuild of every test object on the next make).
.SECONDARY: $(UNIT_OBJ)

PROGRAMS := $(BUILD)/keywardend $(BUILD)/keywarden $(BUILD)/libkeywarden.so \
	$(BUILD)/keywarden.pc $(BUILD)/pam_keywarden.so $(BUILD)/keywarden-proxy

.PHONY: all check check-suites layers unit integration run install uninstall bench fuzz clean deps
.DEFAULT_GOAL := all

all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_COMMON): $(COMMON_OBJ) $(RBAC_OBJ) $(POLICY_OBJ) $(SANDBOX_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LIB_BROKER): $(BROKER_OBJ) $(KEYSTORE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/keywardend: $(call obj,broker/main.c) $(LIB_BROKER) $(LIB_COMMON)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(BROKER_PKGS))

# The CLI links only what every command needs (CLI_LINK_PKGS); the rest of
# CLI_PKGS and libm are loaded by cli/lazy_libs.c's stubs when a command first
# calls them, so hook claude and key get do not map and relocate PCRE2,
# libseccomp, PAM (with libaudit, libcap-ng), libqrencode and zlib at every
# start (issue 17).  The stubs load the sonames of the libraries found here.
CLI_LINK_PKGS := $(CLIENT_PKGS)
lib_soname = $(shell objdump -p "$$($(CC) -print-file-name=lib$(1).so)" 2>/dev/null | \
	sed -n 's/^ *SONAME *//p')
CLI_SONAMES := -DKW_SONAME_PCRE2=\"$(call lib_soname,pcre2-8)\" \
	-DKW_SONAME_SECCOMP=\"$(call lib_soname,seccomp)\" \
	-DKW_SONAME_PAM=\"$(call lib_soname,pam)\" \
	-DKW_SONAME_QRENCODE=\"$(call lib_soname,qrencode)\" \
	-DKW_SONAME_Z=\"$(call lib_soname,z)\"
$(call obj,cli/lazy_libs.c): override CFLAGS += $(CLI_SONAMES)
$(call obj,cli/lazy_libs.c): Makefile

$(BUILD)/keywarden: $(CLI_OBJ) $(LIB_COMMON)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs $(CLI_LINK_PKGS) 2>/dev/null)

# The API proxy: its own process, started by the broker (proxy/DESIGN.md).
$(BUILD)/keywarden-proxy: $(PROXY_OBJ) $(LIB_COMMON)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(PROXY_PKGS)) -lpthread

# The shared library exports only the kw_* names in keywarden.h (see the map).
$(BUILD)/libkeywarden.so: $(LIBKW_OBJ) client/libkeywarden.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libkeywarden.so.0 -Wl,-z,defs \
		-Wl,--version-script=client/libkeywarden.map -o $@ $(LIBKW_OBJ) \
		$(call pkg_libs,$(CLIENT_PKGS))

# The PAM module carries libkeywarden's objects inside; its own code is hidden
# by default and the map exports only pam_sm_* (a module shares sshd's or
# sudo's namespace, so nothing else may leak out).
$(BUILD)/obj/pam_module/%.o: pam_module/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -fvisibility=hidden -c -o $@ $<

$(BUILD)/pam_keywarden.so: $(PAM_LINK_OBJ) pam_module/pam_keywarden.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,defs \
		-Wl,--version-script=pam_module/pam_keywarden.map -o $@ $(PAM_LINK_OBJ) \
		$(call pkg_libs,$(PAM_PKGS))

$(BUILD)/keywarden.pc: client/keywarden.pc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ---- tests ---------------------------------------------------------------

# Every unit test links the shared fixture and the archives: the linker takes
# only the objects a test uses, so a test needs no list of its own.
define unit_test
$(BUILD)/tests/$(notdir $(basename $(1))): $(call obj,$(1)) $(UNIT_SUPPORT_OBJ) $(LIB_BROKER) \
		$(LIB_COMMON)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkg_libs,$$(TEST_PKGS))
endef
$(foreach t,$(UNIT_SRC),$(eval $(call unit_test,$(t))))

# The kernel sandbox's test driver (tests/sandbox/driver.c), for the integration tests.
$(BUILD)/tests/sandbox_driver: $(call obj,tests/sandbox/driver.c) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(CLI_PKGS)) -lpthread

deps:
	@contrib/deps.sh -q

# The entry point CI and people use: dependencies, then both builds' suites.
check: deps layers
	$(Q)$(MAKE) --no-print-directory check-suites
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILD=$(BUILD)/asan check-suites
	$(Q)$(MAKE) --no-print-directory -C tests/fuzz BUILD=$(abspath $(BUILD))/fuzz corpus
	@echo "make check: all suites passed (plain and ASan+UBSan builds, fuzz seeds replayed)"

# Dependencies point one way (tests/check_layers.py says which way).
layers:
	$(Q)python3 tests/check_layers.py
	$(Q)python3 tests/check_layers.py --self-test

check-suites: all $(UNIT_BIN) $(BUILD)/tests/sandbox_driver
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory integration

unit: $(UNIT_BIN)
	@echo "== unit tests ($(BUILD)) =="
	$(Q)set -e; for t in $(UNIT_BIN); do $$t; done

integration: all
	@echo "== integration tests ($(BUILD)) =="
	$(Q)KW_BUILD=$(abspath $(BUILD)) KW_CACHE=$(abspath build)/cache KW_SANITIZE=$(SANITIZE) \
		$(PYTEST) -q -p no:cacheprovider tests/integration

# make run: a broker on the embedded default under ./var, in the foreground.
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)contrib/run-dev.sh $(abspath $(BUILD))

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory -C bench BUILD=$(abspath $(BUILD)) run

fuzz: deps
	$(Q)$(MAKE) --no-print-directory -C tests/fuzz BUILD=$(abspath $(BUILD))/fuzz \
		FUZZ_SECONDS=$(FUZZ_SECONDS) run

# Each directory goes to contrib/install.sh, which copies the files, names the
# installed module and broker in the PAM service and the units, and keeps a
# manifest ($(LIBDIR)/keywarden/install-manifest) for uninstall.
INSTALL_ENV = VERSION='$(VERSION)' BUILD='$(BUILD)' DESTDIR='$(DESTDIR)' \
	PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' SBINDIR='$(SBINDIR)' LIBDIR='$(LIBDIR)' \
	INCLUDEDIR='$(INCLUDEDIR)' MANDIR='$(MANDIR)' PAMDIR='$(PAMDIR)' \
	PAM_MODULEDIR='$(PAM_MODULEDIR)' SYSCONFDIR='$(SYSCONFDIR)' \
	SYSTEMDUNITDIR='$(SYSTEMDUNITDIR)' SYSTEMDUSERUNITDIR='$(SYSTEMDUSERUNITDIR)' \
	BASHCOMPDIR='$(BASHCOMPDIR)' LDCONFIG='$(LDCONFIG)'

install: all
	$(Q)$(INSTALL_ENV) contrib/install.sh install

uninstall:
	$(Q)$(INSTALL_ENV) contrib/install.sh uninstall

clean:
	rm -rf $(BUILD)

-include $(patsubst %.o,%.d,$(call obj,broker/main.c) $(COMMON_OBJ) $(RBAC_OBJ) $(POLICY_OBJ) $(SANDBOX_OBJ) $(CLIENT_OBJ) \
	$(KEYSTORE_OBJ) $(BROKER_OBJ) $(CLI_OBJ) $(PAM_OBJ) $(PROXY_OBJ) $(UNIT_SUPPORT_OBJ) $(UNIT_OBJ) \
	$(call obj,tests/sandbox/driver.c))
