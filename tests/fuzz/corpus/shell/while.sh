while read l; do rm "$l"; done < list
until false; do :; done
