# keywarden - credential and session broker
#
#   make            build everything into build/
#   make check      install missing dependencies, build, run every test suite
#                   (plain build, then once more with ASan+UBSan)
#   make run        start a broker in the foreground under ./var
#   make bench      measure the broker against a baseline in the same run
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS
#   make install    PREFIX=/usr/local DESTDIR=

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
PAMDIR     ?= $(LIBDIR)/security
SYSCONFDIR ?= /etc

PKGS := jansson sqlite3 libsodium liboath libkeyutils libcrypto p11-kit-1 libcurl libsecret-1 zlib
# Only the CLI draws QR codes.
CLI_PKGS := libqrencode

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
	-DKW_VERSION=\"$(VERSION)\" \
	-Icommon -Iclient -Ibroker -Irbac -Icli -Ikeystore \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(CLI_PKGS) 2>/dev/null)
override LDFLAGS += -Wl,-z,relro,-z,now
LDLIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
override CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) -O1 \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC := common/log.c common/clock.c common/config.c common/config_schema.c common/fsutil.c \
	common/wipe_alloc.c common/audit_chain.c \
	rbac/perm.c
CLIENT_SRC := client/frame.c client/proto.c client/errors.c client/client.c \
	client/session_cache.c
# Backends and providers register by file: every keystore/*.c is part of the broker.
KEYSTORE_SRC := $(sort $(wildcard keystore/*.c))
BROKER_SRC := $(KEYSTORE_SRC) broker/main.c broker/server.c broker/loop.c broker/requests.c \
	broker/op_status.c broker/op_check.c broker/op_user.c broker/op_role.c \
	broker/store.c broker/sql.c broker/audit.c broker/state.c broker/users.c \
	broker/roles.c broker/notify.c broker/secrets.c broker/totp.c broker/mfa.c \
	broker/locks.c broker/sessions.c broker/op_login.c broker/op_mfa.c broker/op_lock.c \
	broker/op_session.c broker/keys.c broker/op_key.c broker/verify.c rbac/decide.c \
	broker/audit_query.c broker/audit_prune.c broker/batch.c broker/retention.c \
	broker/op_audit.c broker/op_gdpr.c broker/monitor.c broker/notifier.c broker/incidents.c \
	broker/op_incident.c
CLI_SRC    := cli/main.c cli/prompt.c cli/table.c cli/cmd_status.c cli/cmd_config.c \
	cli/cmd_check.c cli/cmd_key.c cli/cmd_key_import.c cli/cmd_exec.c cli/cmd_admin.c cli/cmd_admin_user.c cli/cmd_admin_role.c \
	cli/cmd_login.c cli/cmd_admin_session.c cli/cmd_logout.c cli/cmd_totp.c cli/enroll.c \
	cli/qr.c cli/timespec.c cli/archive_verify.c cli/cmd_admin_audit.c cli/cmd_admin_incident.c \
	cli/records.c cli/outfile.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
BROKER_OBJ := $(call obj,$(BROKER_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
PAM_SRC    := pam_module/pam_keywarden.c pam_module/trust.c
PAM_OBJ    := $(call obj,$(PAM_SRC))

UNIT_TESTS := test_config test_frame test_proto test_perm test_rbac test_session_cache \
	test_totp test_sessions test_providers test_keystore test_audit_store
# Broker code the unit tests exercise directly (TOTP, sessions, locks, state.db).
UNIT_BROKER_OBJ := $(call obj,broker/totp.c broker/secrets.c broker/locks.c \
	broker/sessions.c broker/mfa.c broker/sql.c broker/store.c broker/state.c broker/users.c)
# The master-key providers (test_providers); the local one seals with aead.c.
UNIT_KEYSTORE_OBJ := $(call obj,$(sort $(wildcard keystore/provider*.c)) keystore/aead.c)
UNIT_BIN   := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
# test_keystore opens the file backend through kw_keystore_open (which also names the keychain).
UNIT_KEYSTORE_BACKEND_OBJ := $(call obj,keystore/keystore.c keystore/backend_file.c \
	keystore/backend_keychain.c)

PROGRAMS := $(BUILD)/keywardend $(BUILD)/keywarden $(BUILD)/libkeywarden.so \
	$(BUILD)/keywarden.pc $(BUILD)/pam_keywarden.so

.PHONY: all check check-suites unit integration run install bench fuzz clean deps
.DEFAULT_GOAL := all

all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/keywardend: $(BROKER_OBJ) $(CLIENT_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/keywarden: $(CLI_OBJ) $(CLIENT_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell $(PKG_CONFIG) --libs pam $(CLI_PKGS))

# The shared library exports only the kw_* names in keywarden.h (see the map).
$(BUILD)/libkeywarden.so: $(CLIENT_OBJ) client/libkeywarden.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libkeywarden.so.0 \
		-Wl,--version-script=client/libkeywarden.map -o $@ $(CLIENT_OBJ) \
		$(shell $(PKG_CONFIG) --libs jansson libsodium libkeyutils)

# The PAM module carries libkeywarden's objects inside; its own code is hidden
# by default and the map exports only pam_sm_* (a module shares sshd's or
# sudo's namespace, so nothing else may leak out).
$(BUILD)/obj/pam_module/%.o: pam_module/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -fvisibility=hidden $(shell $(PKG_CONFIG) --cflags pam) -c -o $@ $<

$(BUILD)/pam_keywarden.so: $(PAM_OBJ) $(CLIENT_OBJ) pam_module/pam_keywarden.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,defs \
		-Wl,--version-script=pam_module/pam_keywarden.map -o $@ $(PAM_OBJ) $(CLIENT_OBJ) \
		$(shell $(PKG_CONFIG) --libs jansson libsodium libkeyutils pam)

$(BUILD)/keywarden.pc: client/keywarden.pc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ---- tests ---------------------------------------------------------------

# No recipe: the pattern rule below links these too ($^).
$(BUILD)/tests/test_keystore: $(UNIT_KEYSTORE_BACKEND_OBJ)
$(BUILD)/tests/test_audit_store: $(call obj,broker/audit.c broker/audit_query.c \
	broker/audit_prune.c)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(CLIENT_OBJ) $(COMMON_OBJ) $(BUILD)/obj/rbac/decide.o \
		$(UNIT_BROKER_OBJ) $(UNIT_KEYSTORE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) \
		$(shell $(PKG_CONFIG) --libs cmocka)

deps:
	@contrib/deps.sh -q

# The entry point CI and people use: dependencies, then both builds' suites.
check: deps
	$(Q)$(MAKE) --no-print-directory check-suites
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILD=$(BUILD)/asan check-suites
	$(Q)$(MAKE) --no-print-directory -C tests/fuzz BUILD=$(abspath $(BUILD))/fuzz corpus
	@echo "make check: all suites passed (plain and ASan+UBSan builds, fuzz seeds replayed)"

check-suites: all $(UNIT_BIN)
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

install: all
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/keywarden $(DESTDIR)$(BINDIR)/keywarden
	install -m 0755 $(BUILD)/keywardend $(DESTDIR)$(SBINDIR)/keywardend
	install -m 0755 $(BUILD)/libkeywarden.so $(DESTDIR)$(LIBDIR)/libkeywarden.so.0
	ln -sf libkeywarden.so.0 $(DESTDIR)$(LIBDIR)/libkeywarden.so
	install -m 0644 client/keywarden.h $(DESTDIR)$(INCLUDEDIR)/keywarden.h
	install -d -m 0755 $(DESTDIR)$(PAMDIR)
	install -m 0644 $(BUILD)/pam_keywarden.so $(DESTDIR)$(PAMDIR)/pam_keywarden.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		client/keywarden.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/keywarden.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/keywarden.pc
	install -m 0644 man/keywarden.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/keywarden.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/keywardend.8 man/pam_keywarden.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
