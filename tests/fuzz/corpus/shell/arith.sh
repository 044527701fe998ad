echo $((1+$(rm x))) $(( (2*3) )) $((ls) | cat)
