"r"m 'a b' r\m $'\x72m\n\u00e9\101' $"x"
