/*
 * spawn_floor.c - the spawn floor for make bench: a C program that does
 * nothing, linked like any C program (dynamically, libc only).  Starting it
 * costs exec, the dynamic loader, libc's start-up and exit; a whole-process
 * figure of keywarden divided by this one is what keywarden adds on top.
 */
int
main(void)
{
	return 0;
}
