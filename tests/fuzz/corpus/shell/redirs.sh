ls 2>/dev/null >&2 <&0 3>&- 4<>f &>g &>>h >>i >|j >&k 5>&6- <in
