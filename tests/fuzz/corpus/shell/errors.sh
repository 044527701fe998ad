if true; rm x; fi
{ ls }
ls;;
