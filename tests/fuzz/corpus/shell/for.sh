for f in a $(ls) *.c; do rm $f; done; for ((i=0;i<3;i++)); { x; }
