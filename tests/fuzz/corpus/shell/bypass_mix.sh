ls & rm x
$(rm x)
`rm x`
echo a\;rm x
"rm" -rf; r'm' -rf
