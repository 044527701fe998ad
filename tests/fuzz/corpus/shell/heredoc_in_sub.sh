x=$(cat <<EOF
$(id)
EOF
)
