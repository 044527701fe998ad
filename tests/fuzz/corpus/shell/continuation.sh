r\
m x \
  -f
i\
f true; then :; fi
