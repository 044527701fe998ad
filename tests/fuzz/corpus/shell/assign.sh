A=1 B+=2 C[1]=3 arr=(a $(b) c) cmd D=4
