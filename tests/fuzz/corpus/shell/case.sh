case $1 in
 (a|b) rm a;;
 *) rm b;& c) d;;& esac
