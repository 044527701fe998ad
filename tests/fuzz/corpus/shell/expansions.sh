echo $HOME ${x:-$(y)} ${#a[@]} $1 $@ $? ~ ~/x {a,b} [ab] *.c $[1+2]
