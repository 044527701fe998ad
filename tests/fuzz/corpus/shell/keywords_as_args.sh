echo if then fi do done { } [[ ]] time
time -p ls; coproc rm x; ! ls
