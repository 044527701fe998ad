cat <<EOF > /etc/x
hello $(id) `w`
EOF
