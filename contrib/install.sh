#!/bin/sh
# contrib/install.sh - the body of `make install` and `make uninstall`.
#
#   install.sh install     copy the built files under $DESTDIR and list them in a manifest
#   install.sh uninstall   remove what the manifest lists, and nothing an admin changed
#
# The Makefile passes every directory in the environment (BINDIR, PAMDIR, ...;
# see the install target).  Paths in the manifest are the installed ones,
# without DESTDIR, so a staged tree can be packaged as it is.
#
# The manifest, $LIBDIR/keywarden/install-manifest, has one line per thing
# install added, TYPE<tab>VALUE<tab>PATH:
#   dir   -       a directory install created (removed at uninstall if empty)
#   file  SHA256  a file, with the digest of what install wrote
#   link  TARGET  a symbolic link
# A file whose content is no longer what install wrote has been edited by
# someone: uninstall leaves it and says so, and install does not overwrite
# an edited PAM service but writes the new one beside it as NAME.new.
# A second install keeps the first one's entries, so one uninstall removes
# what both added.
# (POSIX sh, plus `local` and `test -ef`, which dash, bash and busybox sh have.)
set -eu

say() { printf '%s\n' "$*"; }
note() { printf 'make %s: %s\n' "$ACTION" "$*" >&2; }
die() { note "$*"; exit 1; }

digest() { sha256sum < "$1" | cut -d' ' -f1; }

# A path made safe for the right-hand side of a sed s||| command.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# ---- the manifest ----------------------------------------------------------

# The entry for PATH in the manifest of an earlier install ("TYPE VALUE"), or nothing.
old_entry() {
	[ -s "$OLD" ] || return 0
	awk -F '\t' -v p="$1" '$3 == p { print $1 " " $2 }' "$OLD" | tail -n 1
}

# record TYPE VALUE PATH: one manifest line.
record() {
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$NEW"
}

# The manifest goes in place even when install stops half-way, so that
# uninstall can take away what was already copied.
write_manifest() {
	[ -n "${NEW:-}" ] && [ -f "$NEW" ] || return 0
	[ -d "$DESTDIR$MANIFEST_DIR" ] || return 0
	{
		printf '# keywarden %s: what make install added; make uninstall removes it\n' \
		    "$VERSION"
		# This install's entries, then those of earlier installs it did not redo.
		cat "$NEW"
		if [ -s "$OLD" ]; then
			awk -F '\t' 'NR == FNR { seen[$3] = 1; next }
			    /^#/ || $3 == "" { next } !($3 in seen)' "$NEW" "$OLD"
		fi
	} > "$DESTDIR$MANIFEST.tmp"
	chmod 0644 "$DESTDIR$MANIFEST.tmp"
	mv -f "$DESTDIR$MANIFEST.tmp" "$DESTDIR$MANIFEST"
}

# ---- install ---------------------------------------------------------------

# ensure_dir DIR: create DIR and its missing parents (0755), recording each.
ensure_dir() {
	local d="$1" missing=""
	while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do
		missing="$d
$missing"
		d=$(dirname "$d")
	done
	printf '%s' "$missing" | while IFS= read -r d; do
		[ -n "$d" ] || continue
		mkdir -m 0755 "$DESTDIR$d"
		record dir - "$d"
	done
}

# put MODE SRC DEST [SED-ARGS...]: install SRC as DEST, through sed if given.
# The copy is renamed into place, so a running program keeps its old file.
put() {
	local mode="$1" src="$2" dest="$3"
	shift 3
	ensure_dir "$(dirname "$dest")"
	TMPFILE=$DESTDIR$dest.kw-install.$$
	if [ $# -gt 0 ]; then
		sed "$@" "$src" > "$TMPFILE"
	else
		cp "$src" "$TMPFILE"
	fi
	chmod "$mode" "$TMPFILE"
	mv -f "$TMPFILE" "$DESTDIR$dest"
	TMPFILE=
	record file "$(digest "$DESTDIR$dest")" "$dest"
	say "  INSTALL $dest"
}

# link TARGET DEST
link() {
	ensure_dir "$(dirname "$2")"
	ln -sfn "$1" "$DESTDIR$2"
	record link "$1" "$2"
	say "  LINK    $2 -> $1"
}

# put_config MODE SRC DEST [SED-ARGS...]: like put, but a DEST someone has
# edited since an install wrote it (or one that was there before) stays as
# it is, and the new file goes beside it as DEST.new.
put_config() {
	local mode="$1" src="$2" dest="$3" gen="$WORK/config" want have="" prev
	shift 3
	if [ $# -gt 0 ]; then sed "$@" "$src" > "$gen"; else cp "$src" "$gen"; fi
	if [ ! -e "$DESTDIR$dest" ] && [ ! -L "$DESTDIR$dest" ]; then
		put "$mode" "$gen" "$dest"
		return
	fi
	want=$(digest "$gen")
	if [ -f "$DESTDIR$dest" ] && [ ! -L "$DESTDIR$dest" ]; then
		have=$(digest "$DESTDIR$dest")
	fi
	prev=$(old_entry "$dest")
	if [ "$have" = "$want" ]; then
		# Already as this install would write it: ours only if an install wrote it.
		[ "$prev" = "file $have" ] && record file "$have" "$dest"
		say "  KEEP    $dest (already as make install writes it)"
	elif [ -n "$have" ] && [ "$prev" = "file $have" ]; then
		put "$mode" "$gen" "$dest"          # written by an earlier install, never edited
	else
		put "$mode" "$gen" "$dest.new"
		KEPT="$KEPT $dest"
	fi
}

# Where Linux-PAM finds the module: by its bare name when PAMDIR is the
# directory libpam loads bare names from, else by its full path.
pam_module_name() {
	if [ "$PAMDIR" = "$PAM_MODULEDIR" ] ||
	    { [ -z "$DESTDIR" ] && [ -d "$PAMDIR" ] && [ "$PAMDIR" -ef "$PAM_MODULEDIR" ]; }; then
		echo pam_keywarden.so
	else
		echo "$PAMDIR/pam_keywarden.so"
	fi
}

run_ldconfig() {
	[ -z "$DESTDIR" ] || return 0
	if ! "$LDCONFIG" 2>/dev/null && ! /sbin/ldconfig 2>/dev/null; then
		note "ldconfig failed: run it as root, so that programs find libkeywarden.so.0"
	fi
}

do_install() {
	b=$BUILD
	for f in keywarden keywardend libkeywarden.so pam_keywarden.so; do
		[ -f "$b/$f" ] || die "$b/$f is not built (run make first)"
	done
	[ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
	ensure_dir "$MANIFEST_DIR"

	put 0755 "$b/keywarden" "$BINDIR/keywarden"
	put 0755 "$b/keywardend" "$SBINDIR/keywardend"
	put 0755 "$b/libkeywarden.so" "$LIBDIR/libkeywarden.so.0"
	link libkeywarden.so.0 "$LIBDIR/libkeywarden.so"
	put 0644 client/keywarden.pc.in "$LIBDIR/pkgconfig/keywarden.pc" \
	    -e "s|@PREFIX@|$(sed_escape "$PREFIX")|g" -e "s|@LIBDIR@|$(sed_escape "$LIBDIR")|g" \
	    -e "s|@INCLUDEDIR@|$(sed_escape "$INCLUDEDIR")|g" -e "s|@VERSION@|$VERSION|g"
	put 0644 client/keywarden.h "$INCLUDEDIR/keywarden.h" \
	    -e 's|"common/errors.h"|<keywarden/errors.h>|'
	put 0644 common/errors.h "$INCLUDEDIR/keywarden/errors.h"
	put 0644 "$b/pam_keywarden.so" "$PAMDIR/pam_keywarden.so"
	run_ldconfig

	# The PAM service names the module this install put in PAMDIR (its
	# commented examples too).
	module=$(pam_module_name)
	line='^\(#\{0,1\}[[:space:]]*[a-z]\{1,\}[[:space:]]\{1,\}[a-z]\{1,\}[[:space:]]\{1,\}\)'
	put_config 0644 contrib/pam.d/keywarden "$SYSCONFDIR/pam.d/keywarden" \
	    -e "s|${line}pam_keywarden\.so|\1$(sed_escape "$module")|"

	# The units start the broker this install put in SBINDIR, on SYSCONFDIR's config.
	sbin="s|/usr/local/sbin/keywardend|$(sed_escape "$SBINDIR")/keywardend|g"
	etc="s|/etc/keywarden/|$(sed_escape "$SYSCONFDIR")/keywarden/|g"
	put 0644 contrib/systemd/keywarden.service "$SYSTEMDUNITDIR/keywarden.service" \
	    -e "$sbin" -e "$etc"
	put 0644 contrib/systemd/keywarden-user.service "$SYSTEMDUSERUNITDIR/keywarden.service" \
	    -e "$sbin" -e "$etc"
	put 0644 contrib/bash-completion/keywarden "$BASHCOMPDIR/keywarden"

	for m in man/keywarden.1 man/keywarden.conf.5 man/keywardend.8 man/pam_keywarden.8; do
		put 0644 "$m" "$MANDIR/man${m##*.}/${m#man/}"
	done

	write_manifest
	say "  MANIFEST $MANIFEST"
	for k in $KEPT; do
		note "kept $k, which differs from what this install writes;" \
		    "the new one is $k.new: merge the two, then remove $k.new"
	done
	if [ "$module" = pam_keywarden.so ]; then
		say "PAM service $SYSCONFDIR/pam.d/keywarden loads pam_keywarden.so from $PAMDIR"
	else
		say "PAM service $SYSCONFDIR/pam.d/keywarden loads $module"
	fi
}

# ---- uninstall -------------------------------------------------------------

do_uninstall() {
	[ -f "$DESTDIR$MANIFEST" ] || die "no install manifest at $DESTDIR$MANIFEST:" \
	    "nothing was installed with LIBDIR=$LIBDIR${DESTDIR:+ and DESTDIR=$DESTDIR}"
	kept=0
	# Files and links last installed first; directories once they are empty.
	grep -v '^#' "$DESTDIR$MANIFEST" | tac > "$WORK/entries"
	while IFS="$(printf '\t')" read -r type value path; do
		p=$DESTDIR$path
		case $type in
		file)
			if [ -f "$p" ] && [ ! -L "$p" ]; then
				if [ "$(digest "$p")" = "$value" ]; then
					rm -f "$p"
					say "  REMOVE  $path"
				else
					note "kept $path: it changed since make install wrote it"
					kept=$((kept + 1))
				fi
			fi
			;;
		link)
			if [ -L "$p" ] && [ "$(readlink "$p")" = "$value" ]; then
				rm -f "$p"
				say "  REMOVE  $path"
			fi
			;;
		dir) ;;
		*) die "$DESTDIR$MANIFEST: unknown entry type '$type' for $path" ;;
		esac
	done < "$WORK/entries"
	rm -f "$DESTDIR$MANIFEST"
	say "  REMOVE  $MANIFEST"
	# Deepest first, so a directory goes after the ones inside it.
	awk -F '\t' '$1 == "dir" { print gsub("/", "/", $3) "\t" $3 }' "$WORK/entries" |
	    sort -t "$(printf '\t')" -k1,1nr -k2 | uniq | cut -f2- |
	    while IFS= read -r d; do
		[ -d "$DESTDIR$d" ] || continue
		if rmdir "$DESTDIR$d" 2>/dev/null; then
			say "  RMDIR   $d"
		else
			note "kept $d: not empty"
		fi
	done
	run_ldconfig
	[ "$kept" -eq 0 ] || note "$kept changed file(s) kept; remove them yourself if unwanted"
}

# ---- main ------------------------------------------------------------------

ACTION=${1:-}
: "${VERSION:?}" "${BUILD:?}" "${PREFIX:?}" "${BINDIR:?}" "${SBINDIR:?}" "${LIBDIR:?}"
: "${INCLUDEDIR:?}" "${MANDIR:?}" "${PAMDIR:?}" "${SYSCONFDIR:?}" "${SYSTEMDUNITDIR:?}"
: "${SYSTEMDUSERUNITDIR:?}" "${BASHCOMPDIR:?}"
DESTDIR=${DESTDIR:-}
PAM_MODULEDIR=${PAM_MODULEDIR:-}
LDCONFIG=${LDCONFIG:-ldconfig}
MANIFEST_DIR=$LIBDIR/keywarden
MANIFEST=$MANIFEST_DIR/install-manifest
KEPT=
TMPFILE=
NEW=

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kw-install.XXXXXX")
OLD=$WORK/old
cleanup() {
	rc=$?
	[ -z "$TMPFILE" ] || rm -f "$TMPFILE"
	[ "$ACTION" != install ] || [ "$rc" -eq 0 ] || write_manifest
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

case $ACTION in
install)
	NEW=$WORK/new
	: > "$NEW"
	if [ -f "$DESTDIR$MANIFEST" ]; then cp "$DESTDIR$MANIFEST" "$OLD"; else : > "$OLD"; fi
	do_install
	;;
uninstall)
	do_uninstall
	;;
*)
	die "usage: contrib/install.sh install|uninstall (run by make)"
	;;
esac
