cat <<A <<-B | sh
a
A
		b
	B
echo after
