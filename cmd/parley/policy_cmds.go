package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// cmdRole makes a user of a conversation an admin or a plain member.
func cmdRole(ctx context.Context, e *env, args []string) error {
	fs := e.flags("role", "CONV USER admin|member")
	pos, err := parse(fs, args, 3, 3)
	if err != nil {
		return err
	}
	if pos[2] != "admin" && pos[2] != "member" {
		return usagef("role: %q is no role: give admin or member", pos[2])
	}
	user := strings.TrimPrefix(pos[1], "@")
	return changePolicy(ctx, e, pos[0], func(s *session, conv protocol.ConversationID) error {
		return s.api.SetRole(ctx, conv, user, pos[2] == "admin")
	})
}

// cmdPolicy shows a conversation's policy or, with ACTION=WHO
// arguments, changes it.
func cmdPolicy(ctx context.Context, e *env, args []string) error {
	fs := e.flags("policy", "CONV [ACTION=admins|members ...]")
	pos, err := parse(fs, args, 1, 1+len(protocol.Actions()))
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for _, arg := range pos[1:] {
		name, who, ok := strings.Cut(arg, "=")
		if !ok {
			return usagef("policy: %q: want ACTION=admins or ACTION=members", arg)
		}
		byName[name] = who
	}
	rules, err := daemonapi.ParseRules(byName)
	if err != nil {
		return usagef("policy: %v", err)
	}
	return changePolicy(ctx, e, pos[0], func(s *session, conv protocol.ConversationID) error {
		if len(rules) == 0 {
			return nil
		}
		return s.api.SetPolicy(ctx, conv, rules)
	})
}

// cmdTimer sets a conversation's disappearing-message timer, then prints
// its policy.
func cmdTimer(ctx context.Context, e *env, args []string) error {
	fs := e.flags("timer", "CONV off|5m|1h|1d|1w|4w")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	d, err := protocol.ParseTimer(pos[1])
	if err != nil {
		return usagef("timer: %v", err)
	}
	return changePolicy(ctx, e, pos[0], func(s *session, conv protocol.ConversationID) error {
		return s.api.SetTimer(ctx, conv, d)
	})
}

// changePolicy runs change in a conversation, then prints its policy.
func changePolicy(ctx context.Context, e *env, arg string, change func(s *session, conv protocol.ConversationID) error) error {
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, arg)
	if err != nil {
		return err
	}
	if err := change(s, cv.ID); err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	p, err := s.api.Policy(ctx, cv.ID)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Conversation int64             `json:"conversation"`
			Policy       *daemonapi.Policy `json:"policy"`
		}{int64(cv.ID), daemonapi.NewPolicy(p)})
	}
	if p == nil {
		fmt.Fprintf(e.stdout, "conversation %d has no policy: every member may do everything\n", cv.ID)
		return nil
	}
	fmt.Fprintf(e.stdout, "conversation %d: admins %s\n", cv.ID, strings.Join(p.Admins, ", "))
	for _, a := range protocol.Actions() {
		fmt.Fprintf(e.stdout, "  %-7s %s\n", a, p.Rule(a))
	}
	fmt.Fprintf(e.stdout, "disappearing messages: %s\n", protocol.FormatTimer(p.Timer))
	return nil
}
