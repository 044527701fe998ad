echo "\" \\ \$x \` ${a:-"b c"}"
